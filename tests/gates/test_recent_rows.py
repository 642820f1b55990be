"""Gates read the newest rows from memory: same verdicts as DuckDB alone, and after a restart.

Real DuckDB files, one recorded telemetry stream replayed three ways, 100 gates per pass during a
rollout: (a) the store with its in-memory recent rows and no commit between passes (as in the daemon,
where DuckDB commits on its durability rhythm: only a read memory cannot answer commits first), (b) the
same store read through SQL only, committed before every pass, (c) like (a), but the store and the
engine are closed and reopened halfway (a daemon restart: the in-memory state is rebuilt from DuckDB).
Every pass's verdicts must be equal.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from samantha.core.clock import SimClock
from samantha.gates.engine import GateEngine
from samantha.gates.spec import STALENESS_METRICS
from samantha.harness.bench.judge import hundred_gates
from samantha.telemetry.store import SampleBatch, TelemetryStore

T0 = 1_800_000_000.0
SECONDS, FIRST_PASS, RESTART_AT = 150, 40, 95


def _second(k: int, rng: np.random.Generator) -> dict[str, Any]:
    """One second of telemetry: requests of both slots (half shadow-scored), a few noise rows of
    another writer (never judged), host gauges and staleness gauges."""
    n = 40
    ts = T0 + k + np.sort(rng.uniform(0, 1, n))
    standby = rng.uniform(size=n) < 0.5
    lat = rng.lognormal(3.0, 0.3, n) * np.where(standby & (k > 90), 1.3, 1.0)  # the canary slows late on
    return {"ts": ts, "slot": ["standby" if s else "active" for s in standby],
            "bundle": ["m@2" if s else "m@1" for s in standby], "lat": lat, "ok": rng.uniform(size=n) > 0.02,
            "div": np.where(standby, rng.uniform(0, 0.02, n), np.nan), "shadow": standby,
            "host": rng.normal(50, 5, 5)}


def _ingest(store: TelemetryStore, k: int, d: dict[str, Any], *, commit: bool) -> None:
    store.ingest_request_columns(d["ts"], d["slot"], d["bundle"], d["lat"], d["ok"], d["div"], d["shadow"])
    store.ingest_request_columns(d["ts"][:3], "standby", "m@2", 1e6, False, writer="otlp")  # kept, not judged
    for c in range(5):
        store.ingest_samples(SampleBatch("host_memory_used_percent", {"core": str(c)}, [T0 + k + 0.5],
                                         [d["host"][c]]))
        store.ingest_samples(SampleBatch("input_feature_mean", {"core": str(c)}, [T0 + k + 0.5], [d["host"][c]]))
    if k % 10 == 0:
        store.ingest_samples(SampleBatch(STALENESS_METRICS["policy_age"], {}, [T0 + k], [T0 - 100]))
        store.ingest_samples(SampleBatch(STALENESS_METRICS["bundle_expiry"], {}, [T0 + k], [T0 + 7200]))
    if commit:
        store.flush()


class _SqlOnly:
    """The store seen through SQL alone (no in-memory rows): the reference."""

    def __init__(self, store: TelemetryStore) -> None:
        self.read_arrow = store.read_arrow


def _replay(path: Path, *, sql_only: bool = False, restart_at: int | None = None) -> tuple[list, dict]:
    rng = np.random.default_rng(11)
    data = [_second(k, rng) for k in range(SECONDS)]
    gates = hundred_gates()
    clock = SimClock(T0)

    def open_() -> tuple[TelemetryStore, GateEngine]:
        store = TelemetryStore(path, clock=clock, start_writer=False)
        return store, GateEngine(_SqlOnly(store) if sql_only else store, clock)

    store, engine = open_()
    passes, stats = [], {}
    try:
        for k in range(SECONDS):
            clock.advance(1.0)
            _ingest(store, k, data[k], commit=sql_only)
            if restart_at is not None and k == restart_at:
                store.close()
                store, engine = open_()
            if k >= FIRST_PASS:
                vs = engine.evaluate(gates, T0 + k + 1, rollout_start=T0 + 30, canary_bundle="m@2",
                                     active_bundle="m@1")
                passes.append([v.model_dump(exclude={"ts"}) for v in vs])
        stats = {**store.recent.stats(), "commits": store.stats()["commits"]}
    finally:
        store.close()
    return passes, stats


def test_verdicts_from_memory_equal_sql_and_survive_a_restart(tmp_path: Path) -> None:
    mem, mem_stats = _replay(tmp_path / "mem.duckdb")
    sql, _ = _replay(tmp_path / "sql.duckdb", sql_only=True)
    restarted, re_stats = _replay(tmp_path / "restart.duckdb", restart_at=RESTART_AT)
    passes = SECONDS - FIRST_PASS  # each pass reads requests, windowed samples and latest values: from memory
    assert mem_stats["hits"] >= 2.5 * passes and mem_stats["misses"] < 0.1 * passes, mem_stats
    assert mem_stats["commits"] <= mem_stats["misses"], "the memory path committed although nothing missed"
    assert re_stats["floor"]["requests"] is not None  # the reopened store starts from what is on disk
    statuses = {v["status"] for p in mem for v in p}
    assert {"pass", "fail"} <= statuses  # the stream exercises verdicts both ways
    for i, (a, b, c) in enumerate(zip(mem, sql, restarted, strict=True)):
        assert a == b, f"pass {i}: memory and SQL verdicts differ"
        # a fresh engine sums the sequential evidence in another order than the per-bin cache: the last bits
        # of a float may differ, nothing else
        for va, vc in zip(a, c, strict=True):
            assert _same(va, vc), f"pass {i}, gate {va['gate']}: verdicts after the restart differ: {va} != {vc}"


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b
