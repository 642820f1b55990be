"""Chaos test kit: a real twin and a real daemon (`samantha run`, chaos mode on), ephemeral ports."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from samantha.core.config import SamanthaConfig
from samantha.harness.daemon_process import DaemonProcess, write_config
from tests.conftest import free_port
from tests.twin.twinkit import EPHEMERAL, Twin, start_twin


def chaos_config(tmp_path: Path, *, rps: float = 100, **chaos: Any) -> SamanthaConfig:
    port = free_port()
    return SamanthaConfig.model_validate({
        "data_dir": str(tmp_path / "state"), "api": {"port": port},
        "twin": {**EPHEMERAL, "rps": rps, "ingest_url": f"http://127.0.0.1:{port}/v1/ingest/requests",
                 "telemetry_batch_ms": 50},
        "sre": {"playbook_dirs": []},  # chaos alone: no playbook acts on the faults under test
        "llm": {"enabled": False},
        "chaos": {"probe_interval_s": 0.3, **chaos}})


def wait_for(pred: Any, timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@contextlib.contextmanager
def chaos_env(tmp_path: Path, **kw: Any) -> Iterator[tuple[Twin, DaemonProcess]]:
    """The twin first: the daemon finds the Cube through the twin's state file."""
    config = chaos_config(tmp_path, **kw)
    path = write_config(config, tmp_path / "samantha.yaml")
    with contextlib.contextmanager(start_twin)(config) as twin, DaemonProcess(config, path) as daemon:
        yield twin, daemon.start().wait_ready().wait_requests()
