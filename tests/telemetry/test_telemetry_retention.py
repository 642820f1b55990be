"""Retention against a real DuckDB file: rollups match the raw data, the disk budget holds, protected rows stay."""

from __future__ import annotations

import numpy as np
import pytest

from samantha.core.config import SamanthaConfig, StoreConfig
from samantha.telemetry import SampleBatch, TelemetryStore


def _cfg(config: SamanthaConfig, **store) -> SamanthaConfig:
    return config.model_copy(update={"store": StoreConfig(**store)})


def test_rollups_equal_aggregates_of_the_raw_rows(sim_clock, config: SamanthaConfig) -> None:
    cfg = _cfg(config, raw_horizon_s=600, rollup_bucket_s=60, retention_interval_s=3600)
    rng = np.random.default_rng(3)
    now = sim_clock.time()
    n = 20_000
    ts = np.sort(now - 1800 + rng.random(n) * 1800)  # the last 30 minutes
    vals = {s: rng.normal(50, 10, n) for s in ("a", "b")}
    lat = rng.lognormal(2, 0.5, n)
    ok = rng.random(n) > 0.05
    div = np.where(rng.random(n) < 0.3, rng.random(n), np.nan)
    slot = np.where(rng.random(n) < 0.8, "active", "standby")
    with TelemetryStore.open(cfg, sim_clock) as s:
        for lab, v in vals.items():
            s.ingest_samples(SampleBatch("temp", {"s": lab}, ts, v))
        s.ingest_request_columns(ts, list(slot), "v1", lat, ok, div, False)
        report = s.retention.run()
        cutoff = np.floor((now - 600) / 60) * 60
        old = ts < cutoff
        assert report["rolled_rows"] == 3 * int(old.sum())
        assert s.query_scalar("SELECT count(*) FROM samples") == 2 * int((~old).sum())
        assert s.query_scalar("SELECT min(ts) FROM requests") >= cutoff
        sid = {r["s"]: r["id"] for r in s.read_arrow("SELECT labels->>'s' AS s, id FROM series").to_pylist()}
        bucket = np.floor(ts / 60) * 60
        for lab, v in vals.items():
            roll = s.read_arrow("SELECT * FROM samples_1m WHERE series_id = ? ORDER BY bucket", [sid[lab]]).to_pylist()
            buckets = np.unique(bucket[old])
            assert [r["bucket"] for r in roll] == buckets.tolist()
            for r in roll:
                x = v[old & (bucket == r["bucket"])]
                assert r["count"] == len(x)
                assert r["sum"] == pytest.approx(x.sum())
                assert (r["min"], r["max"]) == (x.min(), x.max())
                for qn, pct in (("p50", 50), ("p95", 95), ("p99", 99)):
                    assert r[qn] == pytest.approx(np.percentile(x, pct))
        roll = s.read_arrow("SELECT * FROM requests_1m ORDER BY bucket, slot").to_pylist()
        assert sum(r["count"] for r in roll) == int(old.sum())
        for r in roll:
            m = old & (bucket == r["bucket"]) & (slot == r["slot"])
            assert (r["bundle"], r["shadow"], r["count"]) == ("v1", False, int(m.sum()))
            assert r["errors"] == int((~ok[m]).sum())
            assert r["latency_sum"] == pytest.approx(lat[m].sum())
            assert (r["latency_min"], r["latency_max"]) == (lat[m].min(), lat[m].max())
            assert r["latency_p99"] == pytest.approx(np.percentile(lat[m], 99))
            d = div[m][~np.isnan(div[m])]
            assert r["divergence_count"] == len(d)
            if len(d):
                assert r["divergence_sum"] == pytest.approx(d.sum()) and r["divergence_max"] == d.max()
        # a second run finds nothing new to roll up
        assert s.retention.run()["rolled_rows"] == 0


@pytest.mark.slow
def test_disk_budget_is_a_ring_buffer_that_rolls_up_before_dropping(sim_clock, config: SamanthaConfig) -> None:
    budget_mb = 6
    cfg = _cfg(config, disk_budget_mb=budget_mb, raw_horizon_s=86400, retention_interval_s=3600)
    rng = np.random.default_rng(4)
    now = sim_clock.time()
    total = 0
    with TelemetryStore.open(cfg, sim_clock) as s:
        for i in range(8):  # 8 x 500k random samples: far more than 6 MB
            n = 500_000
            ts = now - 3600 + (i * n + np.arange(n)) * (3500 / (8 * n))
            s.ingest_samples(SampleBatch("load", {"k": str(i % 3)}, ts, rng.random(n)))
            total += n
        s.flush()
        before = s.retention.used_bytes()
        assert before > budget_mb * 2**20
        newest = s.query_scalar("SELECT max(ts) FROM samples")
        report = s.retention.run()
        assert report["used_bytes"] <= budget_mb * 2**20, report
        raw = s.query_scalar("SELECT count(*) FROM samples")
        rolled = s.query_scalar("SELECT sum(count) FROM samples_1m")
        assert 0 < raw < total
        assert raw + rolled == total  # every dropped raw row is accounted for in a rollup
        assert s.query_scalar("SELECT max(ts) FROM samples") == newest  # the ring drops the oldest first
        assert s.query_scalar("SELECT max(bucket) FROM samples_1m") < s.query_scalar("SELECT min(ts) FROM samples")
        # more data keeps arriving; the file stays near the budget instead of growing
        for _ in range(3):
            n = 500_000
            s.ingest_samples(SampleBatch("load", {"k": "0"}, now - 50 + np.arange(n) * (49 / n), rng.random(n)))
            s.flush()
            assert s.retention.run()["used_bytes"] <= budget_mb * 2**20
    size = cfg.store_path.stat().st_size + (cfg.store_path.with_suffix(".duckdb.wal").stat().st_size
                                            if cfg.store_path.with_suffix(".duckdb.wal").exists() else 0)
    assert size <= 3 * before, (size, before)  # freed blocks are reused


def test_protected_rows_survive_budget_pressure(sim_clock, config: SamanthaConfig) -> None:
    cfg = _cfg(config, disk_budget_mb=0.01, retention_interval_s=3600)  # smaller than any DuckDB file
    now = sim_clock.time()
    with TelemetryStore.open(cfg, sim_clock) as s:
        s.retention.protect("events", "json_extract_string(attrs, '$.uploaded') = 'no'")
        s.ingest_events([{"ts": now - 100 + i, "kind": "incident" if i % 2 else "note",
                          "attrs": {"uploaded": "no" if i % 2 else "yes"}} for i in range(40)])
        s.ingest_samples(SampleBatch("m", {}, now - np.arange(1000.0), np.ones(1000)))
        s.flush()
        s.retention.run()
        kept = s.read_arrow("SELECT kind, attrs->>'uploaded' AS up FROM events").to_pylist()
        assert len(kept) == 20 and all(r == {"kind": "incident", "up": "no"} for r in kept)
        assert s.query_scalar("SELECT count(*) FROM samples") == 0  # unprotected data went, rolled up first
        assert s.query_scalar("SELECT count(*) FROM samples_1m") == 0  # ... and then the rollups too
        assert s.retention.stats()["dropped_rows"]["samples"] == 1000


@pytest.mark.slow
def test_the_file_itself_stays_within_the_budget_as_the_ring_turns(sim_clock, config: SamanthaConfig) -> None:
    """What the disk holds (file + WAL, free blocks included), not only DuckDB's used blocks: the ring drops the
    oldest rollups round after round, and the checkpoints after it must not rewrite what is left into new blocks."""
    budget_mb = 4
    cfg = _cfg(config, disk_budget_mb=budget_mb, raw_horizon_s=600, retention_interval_s=3600)
    rng = np.random.default_rng(9)
    peak = 0
    with TelemetryStore.open(cfg, sim_clock) as s:
        for _ in range(80):  # 80 rounds x 30 min x 200 series at 1 Hz: far past the budget
            now = sim_clock.time()
            for k in range(200):
                ts = now + np.arange(1800.0)
                s.ingest_samples(SampleBatch("load", {"k": str(k)}, ts, rng.random(1800)))
            sim_clock.advance(1800)
            s.flush()
            report = s.retention.run()
            assert report["used_bytes"] <= report["live_budget_bytes"], report
            peak = max(peak, report["file_bytes"])
        assert s.retention.dropped_rows.get("samples_1m", 0) > 0  # the ring really turned
    assert peak <= budget_mb * 2**20, (peak / 2**20, budget_mb)
