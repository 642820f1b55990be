"""Spawn helpers: run the proxy (or the echo upstream) as a real child process and reap it."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Mapping


class SpawnError(RuntimeError):
    pass


class ChildProcess:
    """A `python -m MODULE` child that prints `<prefix><value>` once ready; stop() always reaps it."""

    def __init__(self, module: str, args: list[str], ready_prefix: str, *,
                 env: Mapping[str, str] | None = None, timeout: float = 15.0) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", module, *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=dict(env if env is not None else os.environ),
                                     text=True)
        self.value = self._wait_ready(ready_prefix, timeout)

    def _wait_ready(self, prefix: str, timeout: float) -> str:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:  # not select(): a parent with 1024+ open fds (the fleet bench)
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            ready = self._ready_line(sel, prefix, deadline)
        if ready is not None:
            return ready
        self._end()
        err = self.proc.stderr.read() if self.proc.stderr else ""  # read before stop() closes it
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

    def _end(self, timeout: float = 5.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def stop(self, timeout: float = 5.0) -> int:
        self._end(timeout)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        return self.proc.returncode

    def __enter__(self) -> ChildProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def spawn_proxy(port: int = 0, host: str = "127.0.0.1", **kw: object) -> ChildProcess:
    """`python -m samantha.proxy`; `.value` is the control URL."""
    from samantha.proxy.__main__ import READY_PREFIX

    return ChildProcess("samantha.proxy", ["--host", host, "--port", str(port)], READY_PREFIX, **kw)  # type: ignore[arg-type]


def spawn_echo_upstream(body_bytes: int = 64, **kw: object) -> ChildProcess:
    """`python -m samantha.harness.echo_upstream`; `.value` is the port."""
    return ChildProcess("samantha.harness.echo_upstream", ["--body-bytes", str(body_bytes)],
                        "echo-upstream ready ", **kw)  # type: ignore[arg-type]
