"""`samantha telemetry bench`: measured figures for the store, as one JSON-able dict.

Phases (each on a fresh DuckDB file in a temporary directory):
1. cardinality attack: 1M distinct label values pushed into one metric through the public
   row API; series count and RSS before/after (run first, so RSS is not inflated by the
   other phases);
2. ingest: callers hand in SampleBatch(es) of 1,000 samples for `ingest_s` seconds through
   the public API; throughput counts only rows committed and visible to a query;
3. DuckDB bulk ceiling: one large Arrow insert straight into DuckDB, same machine, same run
   (median of three inserts);
4. window query: per-slot p99 latency + error ratio over the last 60 s on a requests table
   of 10M rows (bulk-inserted), timed through `queries.request_window_by`;
5. OTLP: samples/s through OTLP/HTTP protobuf against the JSON-lines push, one `telemetry serve`
   process, same run (`samantha.harness.bench.otlp`).
"""

from __future__ import annotations

import gc
import resource
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import psutil
import pyarrow as pa

from samantha.core.clock import REAL_CLOCK
from samantha.core.config import StoreConfig
from samantha.telemetry import queries
from samantha.telemetry.schema import create_schema
from samantha.telemetry.store import SampleBatch, TelemetryStore

BATCH = 1000


def _rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def cardinality_attack(root: Path, cfg: StoreConfig, n: int = 1_000_000) -> dict[str, Any]:
    now = time.time()
    with TelemetryStore(root / "attack.duckdb", cfg) as store:
        # warm up every code path first so the baseline includes them
        store.ingest_samples([{"metric": "warm", "labels": {"i": str(i)}, "ts": now, "value": 1.0} for i in range(500)])
        store.flush()
        gc.collect()
        before = _rss_mb()
        t0 = time.perf_counter()
        chunk = 10_000
        for start in range(0, n, chunk):
            store.ingest_samples([{"metric": "attack", "labels": {"victim": f"v{i}"}, "ts": now, "value": 1.0}
                                  for i in range(start, min(n, start + chunk))])
        store.flush()
        elapsed = time.perf_counter() - t0
        gc.collect()
        after = _rss_mb()
        series_after = store.query_scalar("SELECT count(*) FROM series WHERE metric = 'attack'")
        rows = store.query_scalar("SELECT count(*) FROM samples s JOIN series r ON r.id = s.series_id "
                                  "WHERE r.metric = 'attack'")
        events = store.query_scalar("SELECT count(*) FROM events WHERE kind = 'cardinality_overflow'")
        folds = store.stats()["folds"]
    return {"label_values": n, "series_after": int(series_after), "budget": cfg.series_budget,
            "samples_kept": int(rows), "folds": folds, "overflow_events": int(events),
            "rss_mb_before": round(before, 1), "rss_mb_after": round(after, 1),
            "rss_ratio": round(after / before, 3), "rows_per_s": round(n / elapsed)}


def ingest(root: Path, cfg: StoreConfig, seconds: float, n_series: int = 100) -> dict[str, Any]:
    rng = np.random.default_rng(7)
    pool = 1_000_000
    now = time.time()
    ts_pool = now - 60 + np.sort(rng.random(pool)) * 60
    val_pool = rng.random(pool) * 100
    labels = [{"series": str(i)} for i in range(n_series)]
    with TelemetryStore(root / "ingest.duckdb", cfg) as store:
        # register the series before the clock starts (as a long-running Cube would have)
        for lab in labels:
            store.ingest_samples(SampleBatch("bench_metric", lab, ts_pool[:1], val_pool[:1]))
        store.flush()
        base = store.query_scalar("SELECT count(*) FROM samples")
        accepted = shed = calls = 0
        off = 0
        t0 = time.perf_counter()
        deadline = t0 + seconds
        ingest_samples = store.ingest_samples
        while True:
            for _ in range(100):
                b = SampleBatch("bench_metric", labels[calls % n_series], ts_pool[off:off + BATCH],
                                val_pool[off:off + BATCH])
                r = ingest_samples(b)
                accepted += r.accepted
                shed += r.shed
                calls += 1
                off = (off + BATCH) % (pool - BATCH)
            if time.perf_counter() >= deadline:
                break
        store.flush()
        elapsed = time.perf_counter() - t0
        visible = store.query_scalar("SELECT count(*) FROM samples") - base
        st = store.stats()
    return {"seconds": round(elapsed, 2), "batches": calls, "batch_size": BATCH, "accepted": accepted,
            "visible": int(visible), "shed": shed, "commits": st["commits"],
            "visibility_lag_ms": st["visibility_lag_ms"],
            "samples_per_s": round(visible / elapsed)}


def bulk_ceiling(root: Path, cfg: StoreConfig, rows: int) -> dict[str, Any]:
    rng = np.random.default_rng(8)
    now = time.time()
    tbl = pa.table({"ts": now - 60 + np.sort(rng.random(rows)) * 60,
                    "series_id": rng.integers(1, 101, rows, dtype=np.int64), "value": rng.random(rows) * 100})
    con = duckdb.connect(str(root / "bulk.duckdb"))
    try:
        con.execute(f"SET threads={int(cfg.threads)}")
        con.execute(f"SET memory_limit='{int(cfg.memory_limit_mb)}MB'")
        create_schema(con)
        con.register("bulk", tbl)
        rates = []
        for _ in range(3):  # the median of three: one insert on a shared machine is a noisy ceiling
            con.execute("DELETE FROM samples")
            con.execute("CHECKPOINT")
            t0 = time.perf_counter()
            con.execute("INSERT INTO samples SELECT * FROM bulk")
            rates.append(rows / (time.perf_counter() - t0))
            assert con.execute("SELECT count(*) FROM samples").fetchone()[0] == rows
    finally:
        con.close()
    return {"rows": rows, "runs_samples_per_s": [round(r) for r in rates], "samples_per_s": round(float(np.median(rates)))}


def window_query(root: Path, cfg: StoreConfig, rows: int, runs: int) -> dict[str, Any]:
    rng = np.random.default_rng(9)
    now = time.time()
    rate = 2000.0  # requests/s: 10M rows span ~83 minutes
    span = rows / rate
    path = root / "window.duckdb"
    con = duckdb.connect(str(path))
    try:
        create_schema(con)
        chunk = 2_000_000
        for start in range(0, rows, chunk):
            m = min(chunk, rows - start)
            ts = now - span + (start + np.arange(m)) / rate
            active = rng.random(m) < 0.9
            div = np.where(rng.random(m) < 0.2, rng.random(m), np.nan)
            tbl = pa.table({
                "ts": ts, "slot": pa.array(np.where(active, "active", "standby")),
                "bundle": pa.array(np.where(active, "v1", "v2")),
                "latency_ms": rng.lognormal(2.0, 0.5, m), "ok": rng.random(m) > 0.01,
                "divergence": pa.array(div, from_pandas=True), "shadow": np.zeros(m, dtype=bool)})
            con.register("gen", tbl)
            con.execute("INSERT INTO requests (ts, slot, bundle, latency_ms, ok, divergence, shadow) SELECT * FROM gen")
            con.unregister("gen")
        con.execute("CHECKPOINT")
    finally:
        con.close()
    times = []
    with TelemetryStore(path, cfg) as store:
        n = store.query_scalar("SELECT count(*) FROM requests")
        result = {}
        for _ in range(runs):
            t0 = time.perf_counter()
            result = queries.request_window_by(store, 60.0, by=("slot",), now=now, clock=REAL_CLOCK,
                                               quantiles=(0.99,))
            times.append((time.perf_counter() - t0) * 1000)
    active = result.get(("active",))
    return {"rows": int(n), "runs": runs, "p50_ms": round(float(np.percentile(times, 50)), 2),
            "p95_ms": round(float(np.percentile(times, 95)), 2),
            "window_rows": sum(w.count for w in result.values()),
            "active_p99_ms": round(active.latency_p99_ms, 2) if active else None,
            "active_error_ratio": round(active.error_ratio, 5) if active else None}


def run_bench(quick: bool = False, progress: Callable[[str], None] | None = None,
              cfg: StoreConfig | None = None) -> dict[str, Any]:
    cfg = cfg or StoreConfig()
    say = progress or (lambda _msg: None)
    root = Path(tempfile.mkdtemp(prefix="samantha-bench-"))
    t_start = time.perf_counter()
    try:
        say("cardinality attack: 1M distinct label values into one metric")
        attack = cardinality_attack(root, cfg)
        ingest_s = 5.0 if quick else 12.0
        say(f"ingest through the public API in batches of {BATCH} for {ingest_s:.0f} s")
        ing = ingest(root, cfg, ingest_s)
        say("DuckDB bulk ceiling: one large Arrow insert")
        bulk = bulk_ceiling(root, cfg, 5_000_000 if quick else 10_000_000)
        say("window query on 10M requests")
        wq = window_query(root, cfg, 10_000_000, 60 if quick else 200)
        say("OTLP/HTTP against JSON lines, one telemetry server, same run")
        from samantha.harness.bench import otlp

        otlp_line = otlp.run(3.0 if quick else 8.0)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    ratio = ing["samples_per_s"] / bulk["samples_per_s"]
    out = {
        "quick": quick,
        "ingest_samples_per_s": ing["samples_per_s"],
        "duckdb_bulk_samples_per_s": bulk["samples_per_s"],
        "ingest_ratio": round(ratio, 3),
        "ingest_visibility_lag_p99_ms": (ing["visibility_lag_ms"] or {}).get("p99"),
        "window_query_p95_ms": wq["p95_ms"],
        "otlp": otlp_line,
        "cardinality_attack": {k: attack[k] for k in ("series_after", "budget", "rss_mb_before", "rss_mb_after")},
        "rss_mb": round(_peak_rss_mb(), 1),
        "targets": {
            "ingest_samples_per_s>=1e6": ing["samples_per_s"] >= 1_000_000,
            "ingest_ratio>=0.5": ratio >= 0.5,
            "window_query_p95_ms<=20": wq["p95_ms"] <= 20,
            "visible_within_250ms_at_full_ingest": ((ing["visibility_lag_ms"] or {}).get("p99") or 1e9) <= 250,
            "series_after<=budget+1": attack["series_after"] <= attack["budget"] + 1,
            "rss_after<=1.5x_before": attack["rss_mb_after"] <= 1.5 * attack["rss_mb_before"],
        },
        "details": {"ingest": ing, "bulk": bulk, "window_query": wq, "cardinality_attack": attack,
                    "ingest_sustained_s": ing["seconds"],
                    "note": ("quick run: ingest sustained ~5 s instead of >= 10 s" if quick else
                             "full run: ingest sustained >= 10 s")},
        "cpu_count": psutil.cpu_count(),
        "wall_s": round(time.perf_counter() - t_start, 1),
    }
    return out
