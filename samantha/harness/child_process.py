"""A server started as a child in its own process group: wait (bounded) until it answers, stop the group.

One place for what every server harness does: the Triton slot, the llama.cpp slot, `telemetry serve`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable

import httpx

__all__ = ["stop_group", "wait_healthy"]


def wait_healthy(proc: subprocess.Popen, url: str, timeout_s: float, *, fail: Callable[[str], Exception],
                 what: str, tail: Callable[[], str]) -> None:
    """Until `url` answers 200; raises `fail(reason)` (stopping the group) if the child exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise fail(f"{what} exited with {proc.returncode}: {tail()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        time.sleep(0.1)
    stop_group(proc)
    raise fail(f"{what} not up within {timeout_s:.0f}s: {tail()}")


def stop_group(proc: subprocess.Popen | None, timeout_s: float = 10.0) -> None:
    """SIGTERM the child's process group, SIGKILL it if it has not exited within `timeout_s`."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
