"""Spawn helpers: run the proxy (or the echo upstream) as a real child process and reap it."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import IO


class SpawnError(RuntimeError):
    pass


class ChildProcess:
    """A `python -m MODULE` child that prints `<prefix><value>` once ready; stop() always reaps it.

    Once ready, its stdout and stderr are drained into a bounded tail (`tail()`): an undrained pipe fills at
    64 KiB and then blocks the child on its next log line, which froze a chatty hub writer under load."""

    TAIL_LINES = 400

    def __init__(self, module: str, args: list[str], ready_prefix: str, *,
                 env: Mapping[str, str] | None = None, timeout: float = 15.0) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", module, *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=dict(env if env is not None else os.environ),
                                     text=True)
        self.value = self._wait_ready(ready_prefix, timeout)
        self._tail: deque[str] = deque(maxlen=self.TAIL_LINES)
        self._drains = [threading.Thread(target=self._drain, args=(s,), daemon=True, name=f"drain-{module}")
                        for s in (self.proc.stdout, self.proc.stderr) if s is not None]
        for t in self._drains:
            t.start()

    def _drain(self, stream: IO[str]) -> None:
        try:
            for line in stream:
                self._tail.append(line.rstrip("\n"))
        except (ValueError, OSError):  # closed by stop() while a grandchild still held the pipe
            pass

    def tail(self, n: int = 50) -> str:
        """The child's last `n` output lines (stdout and stderr interleaved as read)."""
        return "\n".join(list(self._tail)[-n:])

    def _wait_ready(self, prefix: str, timeout: float) -> str:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:  # not select(): a parent with 1024+ open fds (the fleet bench)
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            ready = self._ready_line(sel, prefix, deadline)
        if ready is not None:
            return ready
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        err = _read_ready(self.proc.stderr)
        self.stop()
        raise SpawnError(f"{' '.join(self.proc.args)} did not become ready (rc={self.proc.returncode}): {err[-2000:]}")

    def _ready_line(self, sel: selectors.BaseSelector, prefix: str, deadline: float) -> str | None:
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            if not sel.select(max(0.0, deadline - time.monotonic())):
                break
            line = self.proc.stdout.readline()
            if not line:  # exited before becoming ready
                break
            if line.startswith(prefix):
                return line[len(prefix):].strip()
        return None

    def stop(self, timeout: float = 5.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for t in getattr(self, "_drains", []):
            t.join(timeout=1.0)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        return self.proc.returncode

    def __enter__(self) -> ChildProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _read_ready(stream: IO[str] | None) -> str:
    """What a dead child left in its pipe, without blocking on a grandchild that still holds it open."""
    if stream is None:
        return ""
    os.set_blocking(stream.fileno(), False)
    try:
        return os.read(stream.fileno(), 1 << 20).decode(errors="replace")
    except (BlockingIOError, OSError):
        return ""


def spawn_proxy(port: int = 0, host: str = "127.0.0.1", **kw: object) -> ChildProcess:
    """`python -m samantha.proxy`; `.value` is the control URL."""
    from samantha.proxy.__main__ import READY_PREFIX

    return ChildProcess("samantha.proxy", ["--host", host, "--port", str(port)], READY_PREFIX, **kw)  # type: ignore[arg-type]


def spawn_echo_upstream(body_bytes: int = 64, **kw: object) -> ChildProcess:
    """`python -m samantha.harness.echo_upstream`; `.value` is the port."""
    return ChildProcess("samantha.harness.echo_upstream", ["--body-bytes", str(body_bytes)],
                        "echo-upstream ready ", **kw)  # type: ignore[arg-type]
