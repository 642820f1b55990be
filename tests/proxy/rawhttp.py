"""Raw-socket HTTP helpers, to observe what a toxic does to bytes, fragments and closes."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field


@dataclass
class Exchange:
    data: bytes = b""
    reads: list[int] = field(default_factory=list)
    closed: bool = False  # the proxy closed (EOF)
    reset: bool = False  # ECONNRESET
    timed_out: bool = False
    elapsed_s: float = 0.0
    eof_after_s: float | None = None

    @property
    def body(self) -> bytes:
        return self.data.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in self.data else b""


def exchange(port: int, request: bytes, *, timeout: float = 3.0, until_close: bool = True,
             expect_bytes: int | None = None) -> Exchange:
    """Send `request`, read until EOF / reset / timeout (or `expect_bytes` read)."""
    out = Exchange()
    t0 = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        deadline = t0 + timeout
        while time.perf_counter() < deadline:
            s.settimeout(max(0.01, deadline - time.perf_counter()))
            try:
                chunk = s.recv(65536)
            except TimeoutError:
                out.timed_out = True
                break
            except ConnectionResetError:
                out.reset = True
                break
            if not chunk:
                out.closed = True
                out.eof_after_s = time.perf_counter() - t0
                break
            out.data += chunk
            out.reads.append(len(chunk))
            if not until_close and expect_bytes is not None and len(out.data) >= expect_bytes:
                break
        else:
            out.timed_out = True
    out.elapsed_s = time.perf_counter() - t0
    return out


def get(path: str, close: bool = False) -> bytes:
    conn = "close" if close else "keep-alive"
    return f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: {conn}\r\n\r\n".encode()
