"""A real twin pushing telemetry into a real DuckDB store, with the rollout controller, its API on
loopback and a 10 Hz ticker in front of it. Always torn down."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from samantha.api.rollout_host import RolloutHost
from samantha.gates.rollout_policy import RolloutPolicy
from tests.conftest import free_port
from tests.twin.twinkit import Twin, start_twin, twin_config


def short_policy(*, shadow: bool = True, step_s: float = 1.0, soak_s: float = 3.0) -> RolloutPolicy:
    return RolloutPolicy(name="test-short", shadow={"enabled": shadow, "min_samples": 100, "min_duration": step_s},
                         steps=[{"weight": w, "min_samples": 20, "min_duration": step_s} for w in (1, 5, 25, 50, 100)],
                         soak=soak_s)


@dataclass
class Env:
    twin: Twin
    host: RolloutHost


@contextmanager
def rollout_env(tmp_path: Path, policy: RolloutPolicy, *, rps: float = 150, max_step_s: float = 120) -> Iterator[Env]:
    port = free_port()
    cfg = twin_config(tmp_path, rps=rps, ingest_url=f"http://127.0.0.1:{port}/v1/ingest/requests")
    gen = start_twin(cfg)
    twin = next(gen)
    try:
        with RolloutHost(cfg, twin.cube, port, policy=policy, max_step_s=max_step_s) as host:
            yield Env(twin, host)
    finally:
        gen.close()
