"""Run the proxy: control API (uvicorn) and data plane on one asyncio loop, plus the ttl reaper.

`serve()` is the process entry (`python -m samantha.proxy`); `start_proxy_server()` runs the
same thing on a background thread for tests and embedding.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass, field

import uvicorn

from samantha.core.clock import REAL_CLOCK, Clock
from samantha.proxy.http_api import build_app
from samantha.proxy.registry import Registry

log = logging.getLogger("samantha.proxy")


class _Uvicorn(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # signals are ours: the runtime stops the data plane too


def new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # plain asyncio works, a little slower per chunk
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def bind_control_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


@dataclass
class ProxyRuntime:
    registry: Registry
    sock: socket.socket
    reap_interval_s: float | None = 0.1
    stop_event: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        host, port = self.sock.getsockname()[:2]
        return f"http://{host}:{port}"

    async def run(self, on_ready: Callable[[str], None] | None = None) -> None:
        config = uvicorn.Config(build_app(self.registry), log_level="warning", access_log=False,
                                lifespan="off", timeout_graceful_shutdown=2)
        server = _Uvicorn(config)
        api = asyncio.create_task(server.serve(sockets=[self.sock]))
        reaper = asyncio.create_task(self._reap()) if self.reap_interval_s else None
        while not server.started and not api.done():
            await asyncio.sleep(0.005)
        if api.done():
            api.result()  # raise the startup error
        if on_ready is not None:
            on_ready(self.url)
        stop = asyncio.create_task(self.stop_event.wait())
        await asyncio.wait({api, stop}, return_when=asyncio.FIRST_COMPLETED)
        server.should_exit = True
        if reaper is not None:
            reaper.cancel()
        self.registry.stop_all()
        with contextlib.suppress(asyncio.CancelledError):
            await api
        stop.cancel()

    async def _reap(self) -> None:
        clock = self.registry.clock
        while True:
            await clock.asleep(self.reap_interval_s or 0.1)
            try:
                await self.registry.expire_due()
            except Exception:  # the reaper must outlive any one bad pass
                log.exception("ttl reaper pass failed")


@dataclass
class ProxyServerHandle:
    """A proxy server running on a background thread."""

    url: str
    host: str
    port: int
    registry: Registry
    _loop: asyncio.AbstractEventLoop
    _thread: threading.Thread
    _runtime: ProxyRuntime

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._runtime.stop_event.set)
            self._thread.join(timeout)

    def __enter__(self) -> ProxyServerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_proxy_server(port: int = 0, host: str = "127.0.0.1", *, clock: Clock = REAL_CLOCK,
                       reap_interval_s: float | None = 0.1, timeout: float = 10.0) -> ProxyServerHandle:
    """Start a proxy server on a thread; returns once the control API accepts requests."""
    sock = bind_control_socket(host, port)
    loop = new_event_loop()
    ready = threading.Event()
    failure: list[BaseException] = []
    holder: dict[str, ProxyRuntime] = {}

    def main() -> None:
        asyncio.set_event_loop(loop)

        async def go() -> None:
            runtime = ProxyRuntime(Registry(clock), sock, reap_interval_s)
            holder["runtime"] = runtime
            await runtime.run(on_ready=lambda _url: ready.set())

        try:
            loop.run_until_complete(go())
        except BaseException as e:  # surfaced to the caller of start_proxy_server
            failure.append(e)
            ready.set()
        finally:
            loop.close()

    thread = threading.Thread(target=main, name="samantha-proxy", daemon=True)
    thread.start()
    if not ready.wait(timeout) or failure:
        raise RuntimeError(f"proxy server did not start: {failure[0] if failure else 'timeout'}")
    runtime = holder["runtime"]
    bound_host, bound_port = sock.getsockname()[:2]
    return ProxyServerHandle(url=runtime.url, host=bound_host, port=bound_port,
                             registry=runtime.registry, _loop=loop, _thread=thread, _runtime=runtime)
