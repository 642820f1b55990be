"""`python -m samantha.hub --root DIR [--port 0]`: prints `samantha-hub ready <url>` once listening."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

import uvicorn

from samantha.hub.app import make_app
from samantha.hub.storage import HubStorage

READY_PREFIX = "samantha-hub ready "


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[override]
        yield  # serve() owns SIGTERM/SIGINT


async def serve(root: str, host: str, port: int) -> None:
    storage = HubStorage(root)
    server = _Server(uvicorn.Config(make_app(storage), host=host, port=port, log_level="warning",
                                    access_log=False, lifespan="off"))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            await task
            raise SystemExit(f"samantha-hub: cannot listen on {host}:{port}")
        await asyncio.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    print(f"{READY_PREFIX}http://{host}:{bound}", flush=True)
    await task
    storage.close()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="samantha-hub")
    p.add_argument("--root", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    a = p.parse_args(argv)
    asyncio.run(serve(a.root, a.host, a.port))


if __name__ == "__main__":
    main()
