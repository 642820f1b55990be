"""Fixtures: a real proxy server (in-process thread), a real HTTP upstream, real clients."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest
import toxiproxy.api
from toxiproxy import Toxiproxy

from samantha.cube.proxy_client import ProxyClient
from samantha.proxy import ProxyServerHandle, start_proxy_server


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes; Nagle would hold the body

    def do_GET(self) -> None:
        if self.path.startswith("/bytes/"):
            body = b"x" * int(self.path.rsplit("/", 1)[1])
        elif self.path == "/close":
            body = b"bye"
            self.close_connection = True
        else:
            body = b"hello"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def upstream() -> Iterator[str]:
    """A real HTTP server on loopback; yields 'host:port'."""
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    try:
        yield f"127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.fixture
def proxy_server() -> Iterator[ProxyServerHandle]:
    handle = start_proxy_server(0)
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture
def toxi(proxy_server: ProxyServerHandle) -> Iterator[Toxiproxy]:
    """toxiproxy-python's client pointed at our server (it keeps host/port in class attributes)."""
    api = toxiproxy.api.APIConsumer
    saved = (api.host, api.port)
    server = Toxiproxy()
    server.update_api_consumer(proxy_server.host, proxy_server.port)
    try:
        yield server
    finally:
        api.host, api.port = saved


@pytest.fixture
def client(proxy_server: ProxyServerHandle) -> Iterator[ProxyClient]:
    with ProxyClient(proxy_server.url) as c:
        yield c
