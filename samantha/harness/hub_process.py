"""Run the hub as a real child process (tests, bench, demo); `.value` is its URL."""

from __future__ import annotations

from pathlib import Path

from samantha.harness.proxy_process import ChildProcess


def spawn_hub(root: str | Path, port: int = 0, **kw: object) -> ChildProcess:
    from samantha.hub.__main__ import READY_PREFIX

    return ChildProcess("samantha.hub", ["--root", str(root), "--port", str(port)], READY_PREFIX, **kw)  # type: ignore[arg-type]
