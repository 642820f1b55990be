"""Twin test kit: a real twin (processes, loopback HTTP, ephemeral ports), always torn down."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from samantha.core.config import SamanthaConfig, TwinConfig
from samantha.cube.bundle import Manifest, SigningKey
from samantha.cube.client import CubeClient
from samantha.cube.fault_profile import FaultProfile
from samantha.twin import lifecycle
from samantha.twin.toy_bundle import build_bundle

EPHEMERAL = {k: 0 for k in ("router_port", "control_port", "slot_a_port", "slot_b_port", "proxy_api_port",
                            "proxy_a_port", "proxy_b_port", "loadgen_port")}


def twin_config(tmp_path: Path, **twin: Any) -> SamanthaConfig:
    return SamanthaConfig(data_dir=str(tmp_path / "state"),
                          twin=TwinConfig(**{**EPHEMERAL, "ingest_url": None, "rps": 0, **twin}))


@dataclass
class Twin:
    config: SamanthaConfig
    st: dict[str, Any]
    cube: CubeClient

    @property
    def control(self) -> str:
        return lifecycle.control_url(self.st)

    @property
    def loadgen(self) -> str:
        return lifecycle.loadgen_url(self.st)

    @property
    def router(self) -> str:
        return f"http://127.0.0.1:{self.st['ports']['router_port']}"

    def bundle(self, name: str, *, seed: int = 1, version: str = "2", **profile: Any) -> Manifest:
        key = SigningKey.load(self.st["signing_key"])
        return build_bundle(Path(self.st["bundles_dir"]) / name, name="sensor-mlp", version=version, seed=seed,
                            key=key, profile=FaultProfile(**profile))

    def loadgen_stats(self) -> dict[str, Any]:
        return httpx.get(f"{self.loadgen}/stats", timeout=5).json()

    def set_load(self, **cfg: float) -> None:
        httpx.post(f"{self.loadgen}/config", json=cfg, timeout=5).raise_for_status()

    def router_stats(self) -> dict[str, Any]:
        return httpx.get(f"{self.control}/v1/twin/stats", timeout=5).json()

    def wait_healthy(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(s.healthy for s in self.cube.state().slots):
                return
            time.sleep(0.1)
        raise AssertionError(f"slots not healthy: {self.cube.state()}")


def start_twin(config: SamanthaConfig) -> Iterator[Twin]:
    st = lifecycle.up(config)
    cube = CubeClient(lifecycle.control_url(st))
    try:
        t = Twin(config, st, cube)
        t.wait_healthy()
        yield t
    finally:
        cube.close()
        out = lifecycle.down(config)
        assert not out.get("left"), out


