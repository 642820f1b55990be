"""A real daemon (`samantha run`) on an ephemeral loopback port with viewer/approver/admin operators,
over a store pre-filled with the hand-built records (closed incidents with request telemetry, rollouts)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from samantha.core.config import SamanthaConfig
from samantha.core.operators import add_operator
from samantha.harness.daemon_process import DaemonProcess, write_config
from tests.conftest import free_port
from tests.console.fixture_records import build_store

ROLES = ("viewer", "approver", "admin")


@dataclass
class ConsoleDaemon:
    proc: DaemonProcess
    config: SamanthaConfig
    config_path: Path
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.proc.url

    def local_token(self) -> str:
        return (Path(self.config.data_dir) / "api.token").read_text().strip()

    def bearer(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


def console_config(tmp_path: Path, **api: object) -> SamanthaConfig:
    return SamanthaConfig.model_validate({
        "data_dir": str(tmp_path / "state"),
        "api": {"port": free_port(), **api},
        "sre": {"cube_url": f"http://127.0.0.1:{free_port()}", "cube_timeout_s": 1.0},
        "host_collector": {"interval_s": 1.0},
    })


@contextlib.contextmanager
def console_daemon(tmp_path: Path, *, records: bool = True, **api: object) -> Iterator[ConsoleDaemon]:
    cfg = console_config(tmp_path, **api)
    Path(cfg.data_dir).mkdir(parents=True, exist_ok=True)
    if records:
        build_store(cfg.store_path, tmp_path / "bundles")
    tokens = {role: add_operator(cfg.resolve(cfg.api.operators_file), f"{role}-op", role) for role in ROLES}
    proc = DaemonProcess(cfg, write_config(cfg, tmp_path / "samantha.yaml"))
    try:
        proc.start().wait_ready(60)
        yield ConsoleDaemon(proc, cfg, proc.config_path, tokens)
    finally:
        proc.close()
