"""A real twin pushing telemetry into a real `samantha run` daemon (its DuckDB file, its rollout
controller and API on loopback) with a short test rollout policy (`sre.rollout_policy`). Always torn down."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import httpx
import yaml

from samantha.gates.rollout_policy import RolloutPolicy
from samantha.harness.daemon_process import DaemonProcess, write_config
from samantha.harness.scenario_run import measure_live
from tests.sre.kit import sre_config
from tests.twin.twinkit import Twin, start_twin


def short_policy(*, shadow: bool = True, step_s: float = 1.0, soak_s: float = 3.0) -> RolloutPolicy:
    """The default policy's gates (shadow-channel latency included) with short steps."""
    return RolloutPolicy(name="test-short",
                         shadow={"enabled": shadow, "min_samples": 100, "min_duration": step_s},
                         steps=[{"weight": w, "min_samples": 20, "min_duration": step_s} for w in (1, 5, 25, 50, 100)],
                         soak=soak_s)


@dataclass
class Env:
    twin: Twin
    daemon: DaemonProcess

    @property
    def url(self) -> str:
        return self.daemon.url

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return httpx.post(self.url + path, headers=self.daemon.client.headers(), timeout=30, **kw)

    def status(self) -> dict[str, Any]:
        return self.daemon.client.get("/v1/rollout/status")

    def measure(self, faults: list[dict[str, Any]], t0: float, end: float) -> dict[str, Any]:
        """The harness's measurement of the running daemon, from its records (its admin export)."""
        return measure_live(self.url, self.daemon.client.headers(), faults, t0, end - t0, end)

    def stopped_db(self) -> duckdb.DuckDBPyConnection:
        """Stop the daemon (the one writer) and open its DuckDB file read-only."""
        assert self.daemon.stop() == 0, self.daemon.tail()
        cfg = self.daemon.config
        return duckdb.connect(str(cfg.resolve(cfg.store.path)), read_only=True)


@contextmanager
def rollout_env(tmp_path: Path, policy: RolloutPolicy, *, rps: float = 150, max_step_s: float = 120,
                playbooks: Path | None = None, **sections: Any) -> Iterator[Env]:
    """`sections`: more config sections for the daemon (e.g. `uplink={"hub_url": ...}`); `playbooks`: a playbook
    directory (None: the shipped set)."""
    policy_file = tmp_path / "rollout-policy.yaml"
    policy_file.write_text(yaml.safe_dump(policy.model_dump(mode="json")))
    cfg = sre_config(tmp_path, rps=rps, playbooks=playbooks,
                     sre={"rollout_policy": str(policy_file), "rollout_max_step_s": max_step_s}, **sections)
    gen = start_twin(cfg)  # first: the daemon finds the Cube through the twin's state file
    twin = next(gen)
    try:
        with DaemonProcess(cfg, write_config(cfg, tmp_path / "samantha.yaml"), log=tmp_path / "daemon.log") as d:
            d.start().wait_ready(90, verdicts=True)
            yield Env(twin, d)
    finally:
        gen.close()
