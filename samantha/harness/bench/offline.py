"""`samantha bench offline`: a week offline on a SimClock, then catch-up through a flapping link.

What runs (all real: a DuckDB file with a small disk budget, retention, the outbox, the
hub process, the fault-proxy process between them, the SRE incident book and action
ledger, the signed audit log):

1. t=0, link up: the Cube pulls a signed policy module (expires at `module_days`), then
   the link is cut (the proxy disabled).
2. For `days` simulated days, in `step_s` steps (30 simulated minutes; each step's uplink tick
   collects all of it, as ticks every 10 s would, in fewer transactions): request telemetry at `rps`, `series`
   gauges every 10 s, and every simulated hour an incident (opened, then closed), two
   actions (intent -> done -> verified), three audit records, an alert and an approval
   request. Each step the daemon's uplink tick runs (collect, budget, a failed sync,
   safe mode, drift gauges) and retention runs (every 5 simulated minutes while raw rows
   arrive at full rate). `disk_mb_peak` is the DuckDB file plus its WAL, measured after every
   retention pass (the file never shrinks; freed blocks are reused); `disk_used_mb_peak` is
   the used blocks retention budgets.
   Request telemetry at full rate (raw rows through the store's columnar ingest) runs for
   the first `full_rate_hours` and the last `tail_full_hours`. In between, each minute is
   written as the `requests_1m` row retention would have made of it (count rps*60, errors
   binomial, latency quantiles of the same lognormal), because inserting 121M raw rows
   takes longer than a benchmark should; the JSON says how many rows went which way.
3. The link comes back flapping (enabled 0.3-0.8 s, cut 0.1-0.3 s, 10% of requests
   answered 500 by the proxy) and the Cube syncs until the outbox is empty.
4. The hub's Parquet is read back: never-drop records missing (each audit record, the
   final version of each incident and action, each approval request) and duplicates.
"""

from __future__ import annotations

import math
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from samantha.core.audit import AuditLog, DuckDBAuditStore
from samantha.core.clock import SimClock
from samantha.core.config import AlertsConfig, SamanthaConfig, StoreConfig, UplinkConfig
from samantha.core.signing import KeyPair, trust_public_key
from samantha.telemetry.store import SampleBatch, TelemetryStore
from samantha.uplink.alerts import AlertManager
from samantha.uplink.policy_module import sign_module
from samantha.uplink.service import UplinkService

START = 1_800_000_000.0
MU, SIGMA = math.log(20.0), 0.3  # request latency: lognormal around 20 ms
RAW_CHUNK_S = 300.0
Z = {"p50": 0.0, "p95": 1.6449, "p99": 2.3263}


def file_mb(path: Path) -> float:
    wal = Path(f"{path}.wal")
    return (path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)) / 1e6


@dataclass
class OfflineCube:
    """A Cube's offline side on one DuckDB file, no daemon, driven hour by hour on a sim clock: the store,
    audit log, alerts, uplink, incident book and action ledger (the offline bench, the fleet bench's outbox,
    the demo's uplink act)."""

    store: TelemetryStore
    key: KeyPair
    audit: AuditLog
    alerts: AlertManager
    svc: UplinkService
    incidents: Any
    ledger: Any
    conns: list[Any]

    def close(self) -> None:
        self.svc.close()
        self.alerts.close()
        for c in self.conns:
            c.close()
        self.store.close()


def open_offline_cube(cfg: SamanthaConfig, clock: SimClock, **uplink: Any) -> OfflineCube:
    """`uplink`: more UplinkService arguments (e.g. `on_decision`)."""
    from samantha.loop import tables
    from samantha.loop.incidents import IncidentBook
    from samantha.loop.ledger import ActionLedger

    store = TelemetryStore.open(cfg, clock, start_writer=False)
    tables.create(store.write_sql)
    key = KeyPair.load_or_create(cfg.cube_key_path)
    conns = [store.connection(), store.connection()]
    audit = AuditLog(DuckDBAuditStore(conns[0]), key, clock)
    alerts = AlertManager(conns[1], cfg.alerts, clock)
    svc = UplinkService(cfg, store, clock, key=key, alerts=alerts, audit=audit, **uplink)
    return OfflineCube(store, key, audit, alerts, svc, IncidentBook(store, clock), ActionLedger(store, clock), conns)


class Flapper:
    """Cuts and restores the proxied link at random, until stopped; `first_cut_s` fixes when the first cut comes
    (0: the link is cut as the uploads start, so a fast upload cannot finish before any cut)."""

    def __init__(self, proxy: Any, name: str, seed: int = 3, first_cut_s: float | None = None) -> None:
        self.proxy, self.name, self.first_cut_s = proxy, name, first_cut_s
        self.rng = random.Random(seed)
        self.stop_ev = threading.Event()
        self.cuts = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        first = self.first_cut_s
        while not self.stop_ev.is_set():
            wait, first = (first if first is not None else self.rng.uniform(0.3, 0.8)), None
            if self.stop_ev.wait(wait):
                break
            self.proxy.disable(self.name)
            self.cuts += 1
            self.stop_ev.wait(self.rng.uniform(0.1, 0.3))
            self.proxy.enable(self.name)

    def __enter__(self) -> Flapper:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_ev.set()
        self.thread.join(5)
        self.proxy.enable(self.name)


def run_offline_bench(*, days: float = 7.0, rps: float = 200.0, budget_mb: float = 40.0,
                      outbox_fraction: float = 0.1, series: int = 50, module_days: float = 3.0,
                      full_rate_hours: float = 6.0, tail_full_hours: float = 2.0, step_s: float = 1800.0,
                      batch_span_s: float = 3600.0, seed: int = 7, workdir: Path | None = None,
                      progress: Callable[[float, float], None] | None = None) -> dict[str, Any]:
    from samantha.cube.proxy_client import ProxyClient
    from samantha.harness.hub_process import spawn_hub
    from samantha.harness.proxy_process import spawn_proxy
    from samantha.hub.storage import HubStorage

    if threading.current_thread() is threading.main_thread():  # SIGTERM still reaps the hub and proxy children
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    own_dir = workdir is None
    root = Path(workdir or tempfile.mkdtemp(prefix="samantha-offline-"))
    rng = np.random.default_rng(seed)
    clock = SimClock(START)
    hub_key = KeyPair.generate()
    trust_public_key(hub_key.public, root / "state" / "keys" / "hub")
    result: dict[str, Any] = {"simulated_days_offline": days, "rps": rps, "disk_budget_mb": budget_mb}
    with spawn_hub(root / "hub") as hub, spawn_proxy() as proxy_proc:
        proxy = ProxyClient(proxy_proc.value)
        link = proxy.create_proxy("hub", hub.value.removeprefix("http://"))
        cfg = SamanthaConfig(
            data_dir=str(root / "state"),
            store=StoreConfig(disk_budget_mb=budget_mb, max_past_age_s=30 * 86400, buffer_max_rows=2_000_000,
                              series_budget=max(1000, series)),
            alerts=AlertsConfig(),
            uplink=UplinkConfig(hub_url=f"http://127.0.0.1:{link.listen_port}", cube_id="bench-cube",
                                outbox_budget_fraction=outbox_fraction, timeout_s=2.0,
                                batch_span_s=batch_span_s))
        cube = open_offline_cube(cfg, clock)
        store, audit, alerts, svc, incidents, ledger = (cube.store, cube.audit, cube.alerts, cube.svc,
                                                        cube.incidents, cube.ledger)
        try:
            # 1. the last contact: a policy module that expires while the Cube is offline
            module = sign_module({"version": 1, "issued_at": START - 3600, "expires_at": START + module_days * 86400,
                                  "fleet": "bench"}, hub_key)
            import httpx

            httpx.put(f"{hub.value}/v1/policy", json=module, timeout=10).raise_for_status()
            first = svc.force_sync()
            result["module_pulled"] = (first.get("policy") or {}).get("status")
            proxy.disable("hub")

            # 2. the week offline
            counts = {"raw_request_rows": 0, "rollup_equivalent_minutes": 0, "sample_rows": 0}
            disk_peak = used_peak = 0.0
            offline_s = days * 86400
            steps = int(offline_s // step_s)
            next_hour = START + 3600
            approvals: set[str] = set()
            t_wall = time.perf_counter()
            for i in range(steps):
                t0 = START + i * step_s
                clock.advance(t0 + step_s - clock.time())
                full = (t0 - START) < full_rate_hours * 3600 or (t0 - START) >= offline_s - tail_full_hours * 3600
                if full:  # in 5-minute commits with retention between, as the daemon's 30 s cycle would
                    for c0 in np.arange(t0, t0 + step_s, RAW_CHUNK_S):
                        counts["raw_request_rows"] += raw_requests(store, rng, float(c0), RAW_CHUNK_S, rps)
                        store.retention.run(float(c0) + RAW_CHUNK_S)
                        disk_peak = max(disk_peak, file_mb(store.path))
                        used_peak = max(used_peak, store.retention.last_used_bytes / 1e6)
                else:
                    counts["rollup_equivalent_minutes"] += rollup_minutes(store, rng, t0, step_s, rps)
                counts["sample_rows"] += gauges(store, rng, t0, step_s, series)
                while next_hour <= clock.time():
                    approvals.add(sre_hour(incidents, ledger, audit, alerts, svc, next_hour,
                                                    int((next_hour - START) // 3600)))
                    next_hour += 3600
                svc.tick()
                store.retention.run()
                disk_peak = max(disk_peak, file_mb(store.path))
                used_peak = max(used_peak, store.retention.last_used_bytes / 1e6)
                if progress is not None:
                    progress(i + 1, steps)
            store.retention.run()
            disk_peak = max(disk_peak, file_mb(store.path))
            result["offline_phase_wall_s"] = round(time.perf_counter() - t_wall, 1)
            ob = svc.outbox.stats()
            result["outbox_at_reconnect"] = {k: ob[k] for k in ("pending_batches", "pending_records", "pending_bytes",
                                                                 "budget_bytes", "downsampled_batches", "gap_records",
                                                                 "dropped_records")}
            since = svc.safe.since
            result["safe_mode_entered_at_s"] = None if since is None else round(since - START, 1)
            result["module_expired_at_s"] = round(module_days * 86400, 1)

            # 3. the link returns, flapping, with 500s
            proxy.enable("hub")
            proxy.add_toxic("hub", "http_error", {"status_code": 500}, toxicity=0.1, name="hub500")
            attempts = 0
            t_catch = time.perf_counter()
            with Flapper(proxy, "hub") as flap:
                while attempts < 2000 and time.perf_counter() - t_catch < 600:
                    attempts += 1
                    out = svc.force_sync(max_seconds=30)
                    if out["sync"]["ok"] and out["sync"]["remaining"] == 0:
                        break
                    time.sleep(0.02)
            catchup_s = time.perf_counter() - t_catch
            proxy.remove_toxic("hub", "hub500")
            result["catchup_wall_s"] = round(catchup_s, 2)
            result["catchup_attempts"] = attempts
            result["link_cuts_during_catchup"] = flap.cuts
            result["catchup_x_realtime"] = round(offline_s / catchup_s, 1)
            result["pending_after_catchup"] = svc.outbox.stats()["pending_batches"]

            # 4. what the hub holds
            store.flush()
            expected = _never_drop_keys(store, approvals)
            hs = HubStorage(root / "hub")
            try:
                stats = hs.fleet_stats()
                got: dict[str, set[str]] = {}
                for kind in expected:
                    got[kind] = ({r["record_key"] for r in hs.query(f"SELECT record_key FROM reported_{kind}")}
                                 if kind in hs.kinds() else set())
            finally:
                hs.close()
            lost = {k: len(v - got[k]) for k, v in expected.items()}
            result["never_drop_records"] = {k: len(v) for k, v in expected.items()}
            result["records_lost"] = sum(lost.values())
            result["records_lost_by_kind"] = lost
            result["duplicates_at_hub"] = stats["duplicates"]
            result["hub_records_by_kind"] = {k: v["records"] for k, v in stats["kinds"].items()}
            result["disk_mb_peak"] = round(disk_peak, 2)
            result["disk_used_mb_peak"] = round(used_peak, 2)  # DuckDB's used blocks; the file keeps free ones
            result["disk_within_budget"] = disk_peak <= budget_mb
            result["telemetry"] = counts
        finally:
            cube.close()
            proxy.close()
    if own_dir:
        shutil.rmtree(root, ignore_errors=True)
    return result


def raw_requests(store: TelemetryStore, rng: np.random.Generator, t0: float, span: float, rps: float) -> int:
    n = int(rps * span)
    ts = t0 + np.sort(rng.random(n)) * span
    shadow = rng.random(n) < 0.05
    div = np.where(shadow, np.abs(rng.normal(0.0, 0.01, n)), np.nan)
    res = store.ingest_request_columns(ts, np.where(shadow, "standby", "active").tolist(), "sensor-mlp@1",
                                       rng.lognormal(MU, SIGMA, n), rng.random(n) > 0.002, div, shadow)
    store.flush()
    return res.accepted


def rollup_minutes(store: TelemetryStore, rng: np.random.Generator, t0: float, span: float, rps: float) -> int:
    """The `requests_1m` rows retention makes of `span` seconds of full-rate traffic (same distribution)."""
    minutes = int(span // 60)
    n = int(rps * 60)
    buckets = t0 + 60.0 * np.arange(minutes)
    mean = math.exp(MU + SIGMA**2 / 2)
    q = {k: math.exp(MU + SIGMA * z) for k, z in Z.items()}
    errors = rng.binomial(n, 0.002, minutes)
    tbl = pa.table({
        "bucket": buckets, "slot": ["active"] * minutes, "bundle": ["sensor-mlp@1"] * minutes,
        "shadow": [False] * minutes, "count": np.full(minutes, n, dtype=np.int64), "errors": errors.astype(np.int64),
        "latency_sum": np.full(minutes, n * mean), "latency_min": np.full(minutes, q["p50"] / 3),
        "latency_max": np.full(minutes, q["p99"] * 1.5), "latency_p50": np.full(minutes, q["p50"]),
        "latency_p95": np.full(minutes, q["p95"]), "latency_p99": np.full(minutes, q["p99"]),
        "divergence_count": np.zeros(minutes, dtype=np.int64), "divergence_sum": np.zeros(minutes),
        "divergence_max": np.zeros(minutes)})
    with store._write_lock:
        store._con.register("_bench_1m", tbl)
        try:
            store._con.execute("INSERT INTO requests_1m SELECT * FROM _bench_1m")
        finally:
            store._con.unregister("_bench_1m")
    return minutes


def gauges(store: TelemetryStore, rng: np.random.Generator, t0: float, span: float, series: int) -> int:
    ts = t0 + np.arange(0, span, 10.0)
    for s in range(series):
        store.ingest_samples(SampleBatch("node_sensor_value", {"sensor": f"s{s:03d}"}, ts,
                                         rng.normal(50 + s, 2.0, len(ts))))
    store.flush()
    return series * len(ts)


def sre_hour(incidents: Any, ledger: Any, audit: AuditLog, alerts: AlertManager, svc: UplinkService,
              at: float, i: int) -> str:
    """One simulated hour of the SRE loop's never-drop output."""
    key = f"active:bench-{i}"
    ev = [{"gate": "latency-p99", "status": "fail", "reason": "p99 over budget"}]
    inc = incidents.record_firing(key, "latency over budget", "warning", "latency-slo", ev)
    for k in range(2):
        aid = f"act-{(i * 2 + k):024x}"
        ledger.write_intent({"id": aid, "kind": "alert", "target": "-", "reason": "gate breach",
                             "requested_by": "playbook", "playbook": "latency-slo", "playbook_version": 1,
                             "incident_id": inc, "proposed": {"kind": "alert"}})
        ledger.mark(aid, "done", {"ok": True})
        ledger.mark(aid, "verified", {"ok": True})
        incidents.link_action(inc, aid)
    for kind in ("decision", "action", "verification"):
        audit.append(kind, {"incident": inc, "hour": i})
    alerts.fire("samantha_latency_slo", "warning", "p99 over budget", {"incident": inc})
    incidents.close_quiet(0.0)
    svc.outbox.append_records("approval_requests", [{"id": f"apr-{i}", "ts": at, "experiment": "latency-standby",
                                                      "reason": "touches the active slot"}])
    return f"approval_requests:apr-{i}"


def _never_drop_keys(store: TelemetryStore, approvals: set[str]) -> dict[str, set[str]]:
    """Every audit record, the final version of every incident and action, every approval request."""
    from samantha.uplink.outbox import source

    def keys(kind: str) -> set[str]:
        src = source(kind)
        return set(store.read_arrow(f"SELECT {src.key_sql} FROM {src.table}").column(0).to_pylist())

    return {"audit": keys("audit"), "incidents": keys("incidents"), "actions": keys("actions"),
            "approval_requests": approvals}
