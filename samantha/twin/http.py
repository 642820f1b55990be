"""A small, fast HTTP/1.1 server and keep-alive client on asyncio + httptools.

The twin's data path (loadgen -> router -> proxy -> slot) is measured in requests
per second on 2 shared cores; a general framework costs several times more per
request than this. Bodies need Content-Length or chunked encoding (httptools
decodes both); responses carry Content-Length, except a streamed one (an
answer relayed as it arrives, such as server-sent events), sent chunked.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus

import httptools
import orjson

from samantha.cube.open_inference import UpstreamFailure

MAX_BODY = 1 << 20
_REASONS = {s.value: s.phrase for s in HTTPStatus}


@dataclass(slots=True)
class Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass(slots=True)
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    stream: AsyncIterator[bytes] | None = None  # sent chunk by chunk instead of `body`


Handler = Callable[[Request], Awaitable[Response]]


def json_response(obj: object, status: int = 200) -> Response:
    return Response(status, orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY))


def error_response(status: int, code: str, reason: str, field: str | None = None) -> Response:
    err = {"code": code, "reason": reason}
    if field:
        err["field"] = field
    return json_response({"error": err}, status)


def _head(status: int, r: Response, keep_alive: bool) -> bytes:
    length = "Transfer-Encoding: chunked" if r.stream is not None else f"Content-Length: {len(r.body)}"
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}", f"Content-Type: {r.content_type}", length]
    lines += [f"{k}: {v}" for k, v in r.headers.items()]
    if not keep_alive:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class _ServerConn(asyncio.Protocol):
    def __init__(self, handler: Handler, server: HttpServer):
        self.handler = handler
        self.server = server
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.queue: deque[tuple[Request, bool]] = deque()
        self.busy = False
        self._url = b""
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._size = 0

    # asyncio callbacks
    def connection_made(self, transport):  # type: ignore[override]
        self.transport = transport
        self.server.conns.add(self)

    def connection_lost(self, exc):
        self.server.conns.discard(self)
        self.transport = None

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(400, "upgrade is not supported")
        except httptools.HttpParserError as e:
            self._fail(400, f"malformed HTTP: {e}")

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._url, self._headers, self._body, self._size = b"", {}, [], 0

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > MAX_BODY:
            raise ValueError("body too large")
        self._body.append(body)

    def on_message_complete(self) -> None:
        path, _, query = self._url.decode("latin-1").partition("?")
        req = Request(self.parser.get_method().decode("ascii"), path, query, self._headers, b"".join(self._body))
        self.queue.append((req, self.parser.should_keep_alive()))
        if not self.busy:
            self.busy = True
            asyncio.get_running_loop().create_task(self._serve())

    async def _serve(self) -> None:
        while self.queue and self.transport is not None:
            req, keep_alive = self.queue.popleft()
            self.server.inflight += 1
            try:
                resp = await self.handler(req)
                keep_alive = keep_alive and not self.server.closing
                if resp.stream is not None:
                    keep_alive = await self._send_stream(resp, keep_alive)
                elif self.transport is not None:
                    self.transport.write(_head(resp.status, resp, keep_alive) + resp.body)
            except Exception as e:  # a handler bug answers 500 and the server keeps running
                resp = error_response(500, "internal", f"{type(e).__name__}: {e}")
                if self.transport is not None:
                    self.transport.write(_head(resp.status, resp, keep_alive) + resp.body)
            finally:
                self.server.inflight -= 1
            if self.transport is None:
                return
            if not keep_alive:
                self.transport.close()
                return
        self.busy = False

    async def _send_stream(self, resp: Response, keep_alive: bool) -> bool:
        """Each chunk as the handler yields it; False (close the connection) if the stream broke off."""
        stream = resp.stream
        assert stream is not None
        try:
            if self.transport is not None:
                self.transport.write(_head(resp.status, resp, keep_alive))
            async for chunk in stream:  # started even when the caller is gone, so the handler's cleanup runs
                if self.transport is None:
                    return False  # the caller went away: stop reading the upstream
                if chunk:
                    self.transport.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
            if self.transport is not None:
                self.transport.write(b"0\r\n\r\n")
            return keep_alive
        except Exception:  # headers are gone: a truncated chunked body is how the caller learns
            return False
        finally:
            await stream.aclose()  # type: ignore[attr-defined]

    def _fail(self, status: int, reason: str) -> None:
        if self.transport is not None:
            r = error_response(status, "bad_request", reason)
            self.transport.write(_head(status, r, False) + r.body)
            self.transport.close()


class HttpServer:
    def __init__(self, handler: Handler):
        self.handler = handler
        self.conns: set[_ServerConn] = set()
        self.inflight = 0
        self.closing = False
        self._server: asyncio.AbstractServer | None = None

    async def start(self, host: str, port: int) -> int:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _ServerConn(self.handler, self), host, port,
                                                reuse_address=True, backlog=1024)
        return self._server.sockets[0].getsockname()[1]

    async def close(self, drain_s: float = 2.0) -> None:
        """Stop accepting, let in-flight requests finish (bounded), then close connections."""
        self.closing = True
        if self._server is not None:
            self._server.close()
        deadline = asyncio.get_running_loop().time() + drain_s
        while self.inflight and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        for c in list(self.conns):
            if c.transport is not None:
                c.transport.close()


class UpstreamError(UpstreamFailure):
    """The upstream did not answer (refused, reset, timed out)."""


class UpstreamTimeout(UpstreamError):
    """The upstream took longer than the request's timeout."""


class _ClientConn(asyncio.Protocol):
    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.fut: asyncio.Future | None = None
        self.body: list[bytes] = []
        self.got_bytes = False
        self.closed = False

    def connection_made(self, transport):  # type: ignore[override]
        self.transport = transport

    def connection_lost(self, exc) -> None:
        self.closed = True
        if self.fut is not None and not self.fut.done():
            self.fut.set_exception(UpstreamError("connection closed" + (f": {exc}" if exc else "")))

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as e:
            if self.fut is not None and not self.fut.done():
                self.fut.set_exception(UpstreamError(f"malformed response: {e}"))
            self.close()

    def on_message_begin(self) -> None:
        self.body = []

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        if self.fut is not None and not self.fut.done():
            # stamped as the bytes are parsed, not when the awaiting coroutine resumes: a caller that
            # resumes late (the loop busy with another request) must not look like a slow upstream
            self.fut.set_result((self.parser.get_status_code(), b"".join(self.body), self.parser.should_keep_alive(),
                                 time.perf_counter()))

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class Upstream:
    """A keep-alive connection pool to one host:port."""

    def __init__(self, host: str, port: int, *, max_idle: int = 256):
        self.host, self.port = host, port
        self.idle: list[_ClientConn] = []
        self.max_idle = max_idle

    async def _connect(self) -> _ClientConn:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(_ClientConn, self.host, self.port)
        except OSError as e:
            raise UpstreamError(f"connect {self.host}:{self.port}: {e.strerror or e}") from None
        return conn

    async def request(self, method: str, path: str, body: bytes = b"", *, timeout: float = 5.0,
                      content_type: str = "application/json") -> tuple[int, bytes]:
        status, data, _ = await self.timed_request(method, path, body, timeout=timeout, content_type=content_type)
        return status, data

    async def timed_request(self, method: str, path: str, body: bytes = b"", *, timeout: float = 5.0,
                            content_type: str = "application/json") -> tuple[int, bytes, float]:
        """(status, body, seconds from sending the request to parsing the whole answer)."""
        loop = asyncio.get_running_loop()
        head = (f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n").encode("latin-1")
        for attempt in (0, 1):
            while self.idle and self.idle[-1].closed:
                self.idle.pop()
            reused = bool(self.idle)
            conn = self.idle.pop() if reused else await self._connect()
            fut = loop.create_future()
            conn.fut, conn.got_bytes = fut, False
            timer = loop.call_later(timeout, _expire, fut)
            sent = time.perf_counter()
            conn.transport.write(head + body)  # type: ignore[union-attr]
            try:
                status, data, keep, parsed = await fut
            except UpstreamError as e:
                conn.close()
                # a pooled connection the peer had already closed: retry once on a fresh one
                if reused and not conn.got_bytes and attempt == 0 and not isinstance(e, UpstreamTimeout):
                    continue
                raise
            finally:
                timer.cancel()
                conn.fut = None
            if keep and not conn.closed and len(self.idle) < self.max_idle:
                self.idle.append(conn)
            else:
                conn.close()
            return status, data, parsed - sent
        raise UpstreamError("no usable connection")

    def close(self) -> None:
        for c in self.idle:
            c.close()
        self.idle.clear()


def _expire(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_exception(UpstreamTimeout("timed out"))


def write_port_file(path: str | None, ports: dict[str, int]) -> None:
    """Tell the supervisor which ports were bound (children bind port 0 themselves: no race)."""
    if path:
        import json
        import os

        tmp = f"{path}.tmp"
        with open(tmp, "w") as f:
            json.dump(ports, f)
        os.replace(tmp, path)


def install_uvloop() -> None:
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
