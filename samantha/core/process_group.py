"""Stop a child started in its own session (process group): SIGTERM the group, SIGKILL it after a grace period.

One place for it: the harness's server helpers and the cube runtime's `command` slots both stop their
children this way, so a server's own children (workers, a shell's grandchildren) go with it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess

__all__ = ["stop_group"]


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
