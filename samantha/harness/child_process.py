"""A server started as a child in its own process group: wait (bounded) until it answers, stop the group.

One place for what every server harness does: the Triton slot, the llama.cpp slot, `telemetry serve`
(stopping the group is `samantha.core.process_group`, shared with the cube runtime's `command` slots).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from samantha.core.process_group import stop_group

__all__ = ["stop_group", "wait_healthy", "wait_port_file"]


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


def wait_port_file(proc: subprocess.Popen, path: Path, timeout_s: float) -> dict[str, Any] | None:
    """The ports a child wrote to `path` once it bound them; None if it exited or time ran out first."""
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            return None
        time.sleep(0.05)
    return json.loads(path.read_text())
