"""Uplink test kit: a real hub process, a real fault proxy in front of it, seeded Cube stores."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from samantha.core.clock import SimClock
from samantha.core.config import SamanthaConfig
from samantha.core.signing import KeyPair, trust_public_key
from samantha.cube.proxy_client import ProxyClient
from samantha.hub.storage import HubStorage
from samantha.telemetry.store import TelemetryStore


@contextlib.contextmanager
def hub_behind_proxy(root: Path) -> Iterator[tuple[str, str, ProxyClient]]:
    """(hub URL, proxied URL the Cube uses, proxy client); proxy 'hub' sits between them."""
    from samantha.harness.hub_process import spawn_hub
    from samantha.harness.proxy_process import spawn_proxy

    with spawn_hub(root) as hub, spawn_proxy() as pp:
        proxy = ProxyClient(pp.value)
        try:
            link = proxy.create_proxy("hub", hub.value.removeprefix("http://"))
            yield hub.value, f"http://127.0.0.1:{link.listen_port}", proxy
        finally:
            proxy.close()


def cube_config(tmp: Path, hub_url: str | None, **uplink: Any) -> SamanthaConfig:
    return SamanthaConfig.model_validate({
        "data_dir": str(tmp / "state"),
        "store": {"max_past_age_s": 30 * 86400},
        "uplink": {"hub_url": hub_url, "cube_id": "cube-t", "timeout_s": 2.0, **uplink}})


def write_config(cfg: SamanthaConfig, path: Path) -> Path:
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json", exclude_defaults=True)))
    return path


def hub_key(cfg: SamanthaConfig) -> KeyPair:
    """A hub signing key the Cube trusts (its public half under uplink.hub_keys)."""
    k = KeyPair.generate()
    trust_public_key(k.public, cfg.resolve(cfg.uplink.hub_keys))
    return k


def seed(cfg: SamanthaConfig, *, hours: int = 6, rps: float = 2.0, audit_per_hour: int = 5) -> None:
    """The last `hours` (real time) of request telemetry and signed audit records, in the Cube's DuckDB file."""
    from samantha.core.audit import AuditLog, DuckDBAuditStore

    rng = np.random.default_rng(1)
    clock = SimClock(time.time() - hours * 3600)
    store = TelemetryStore.open(cfg, clock, start_writer=False)
    conn = store.connection()
    try:
        audit = AuditLog(DuckDBAuditStore(conn), KeyPair.load_or_create(cfg.cube_key_path), clock)
        for _ in range(hours):
            clock.advance(3600)
            n = int(rps * 3600)
            store.ingest_request_columns(clock.time() - 3600 + np.sort(rng.random(n)) * 3600, "active", "b1",
                                         rng.lognormal(3, 0.3, n), rng.random(n) > 0.01)
            for k in range(audit_per_hour):
                audit.append("decision", {"k": k})
        store.flush()
    finally:
        conn.close()
        store.close()


def hub_view(root: Path) -> dict[str, Any]:
    """What the hub stored: records per kind, duplicates, and the record keys per kind."""
    hs = HubStorage(root)
    try:
        stats = hs.fleet_stats()
        keys = {k: [r["record_key"] for r in hs.query(f"SELECT record_key FROM reported_{k}")] for k in hs.kinds()}
    finally:
        hs.close()
    return {"stats": stats, "keys": keys}


def cube_keys(cfg: SamanthaConfig, kind: str) -> set[str]:
    import duckdb

    from samantha.uplink.outbox import source

    src = source(kind)
    con = duckdb.connect(str(cfg.store_path), read_only=True)
    try:
        return {r[0] for r in con.execute(f"SELECT {src.key_sql} FROM {src.table}").fetchall()}
    finally:
        con.close()


def cli(args: list[str], cfg_path: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    extra = ["-c", str(cfg_path)] if cfg_path is not None else []
    return subprocess.run([sys.executable, "-m", "samantha", *args, *extra], capture_output=True, text=True,
                          env=dict(os.environ), timeout=timeout)


def publish_module(tmp: Path, hub_url: str, hub_key_path: Path, version: int, valid_for: str, operator: KeyPair,
                   *extra: str, body_extra: dict | None = None) -> None:
    """`samantha hub publish` a module whose operator `ana` may approve and override."""
    body = tmp / f"module-v{version}.yaml"
    body.write_text(yaml.safe_dump({"version": version, "fleet": "twins", "operator_keys": [
        {"name": "ana", "public_key": operator.public.to_b64(), "roles": ["approve", "override"]}],
        **(body_extra or {})}))
    r = cli(["hub", "publish", str(body), "--key", str(hub_key_path), "--hub", hub_url, "--valid-for", valid_for,
             *extra])
    assert r.returncode == 0, r.stderr + r.stdout


@contextlib.contextmanager
def hub_twin_daemon(tmp: Path, cube: str, rps: float = 10, **sections: Any
                    ) -> Iterator[tuple[str, Path, KeyPair, Any, Any]]:
    """A real hub, twin and daemon syncing every 0.3 s: (hub url, hub key file, operator `ana`, twin, daemon).
    `sections`: more daemon config (e.g. chaos={...})."""
    from samantha.harness.hub_process import spawn_hub
    from tests.sre.kit import twin_and_daemon

    hub_key, operator = KeyPair.generate(), KeyPair.generate()
    hub_key_path = tmp / "hub.key"
    hub_key.save(hub_key_path)
    trust_public_key(hub_key.public, tmp / "state" / "keys" / "hub")
    with spawn_hub(tmp / "hub") as hub, \
            twin_and_daemon(tmp, rps=rps, uplink={"hub_url": hub.value, "cube_id": cube, "interval_s": 0.3,
                                                   "backoff_initial_s": 0.2, "backoff_max_s": 1.0},
                            **sections) as (twin, d):
        yield hub.value, hub_key_path, operator, twin, d
