"""A minimal keep-alive HTTP/1.1 responder for benches and demos: `python -m samantha.harness.echo_upstream`.

Answers every request with a fixed body in a single write (so Nagle never splits a
response), prints `echo-upstream ready <port>` once listening, exits on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys


class _Responder(asyncio.Protocol):
    def __init__(self, response: bytes) -> None:
        self.response = response
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head, rest = self.buf[:end], self.buf[end + 4:]
            length = 0
            for line in head.split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                if k.strip().lower() == b"content-length":
                    length = int(v.strip() or 0)
            if len(rest) < length:
                return
            self.buf = rest[length:]
            assert self.transport is not None
            self.transport.write(self.response)


async def serve(host: str, port: int, body_bytes: int) -> None:
    body = b"o" * body_bytes
    response = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % len(body)) + body
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Responder(response), host, port)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    sys.stdout.write(f"echo-upstream ready {server.sockets[0].getsockname()[1]}\n")
    sys.stdout.flush()
    await stop.wait()
    server.close()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--body-bytes", type=int, default=64)
    a = p.parse_args()
    from samantha.proxy.server import new_event_loop

    loop = new_event_loop()
    try:
        loop.run_until_complete(serve(a.host, a.port, a.body_bytes))
    finally:
        loop.close()


if __name__ == "__main__":
    main()
