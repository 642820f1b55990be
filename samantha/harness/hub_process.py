"""Run the hub as a real child process (tests, bench, demo): the HTTP hub or the hub on NATS."""

from __future__ import annotations

from pathlib import Path

from samantha.harness.proxy_process import ChildProcess


def spawn_hub(root: str | Path, port: int = 0, **kw: object) -> ChildProcess:
    from samantha.hub.__main__ import READY_PREFIX

    return ChildProcess("samantha.hub", ["--root", str(root), "--port", str(port)], READY_PREFIX, **kw)  # type: ignore[arg-type]


def spawn_nats_hub(root: str | Path, servers: list[str] | None = None, *, writers: int = 1, replicas: int = 1,
                   name: str = "w", stats_file: str | Path | None = None, ack_wait: float | None = None,
                   up_max_mb: float | None = None, **kw: object) -> ChildProcess:
    """The hub on NATS (`samantha hub serve`): embedded nats-server + writers, or writers joining `servers`.
    `.value` is a NATS URL."""
    from samantha.hub.nats_hub import READY_PREFIX

    args = ["--root", str(root), "--writers", str(writers), "--replicas", str(replicas), "--name", name]
    if stats_file is not None:
        args += ["--stats-file", str(stats_file)]
    if ack_wait is not None:
        args += ["--ack-wait", repr(float(ack_wait))]
    if up_max_mb is not None:
        args += ["--up-max-mb", repr(float(up_max_mb))]
    if servers:
        args += ["--nats", *servers]
    kw.setdefault("timeout", 60.0)
    return ChildProcess("samantha.hub.nats_hub", args, READY_PREFIX, **kw)  # type: ignore[arg-type]
