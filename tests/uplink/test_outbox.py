"""The outbox on a real DuckDB file: collection, freezing, the disk budget's priorities, retention."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from samantha.core.audit import AuditLog, DuckDBAuditStore
from samantha.core.config import StoreConfig
from samantha.core.signing import KeyPair
from samantha.telemetry.store import SampleBatch, TelemetryStore
from samantha.uplink.outbox import Outbox, from_parquet


@pytest.fixture
def store(tmp_path, sim_clock):
    s = TelemetryStore(tmp_path / "t.duckdb", StoreConfig(max_past_age_s=30 * 86400), sim_clock, start_writer=False)
    yield s
    s.close()


def _outbox(store, clock, budget=10_000_000, **kw):
    return Outbox(store.connection(), clock, budget_bytes=budget, **kw)


def _requests(store, t0, seconds, rps=5.0, seed=0):
    rng = np.random.default_rng(seed)
    n = int(seconds * rps)
    store.ingest_request_columns(t0 + np.sort(rng.random(n)) * seconds, "active", "b1", rng.lognormal(3, .3, n),
                                 rng.random(n) > 0.01)
    store.flush()


def test_collects_each_record_once_and_each_incident_version(store, sim_clock):
    ob = _outbox(store, sim_clock)
    conn = store.connection()
    audit = AuditLog(DuckDBAuditStore(conn), KeyPair.generate(), sim_clock)
    for i in range(5):
        audit.append("decision", {"i": i})
    conn.execute("CREATE TABLE incidents (id VARCHAR, status VARCHAR, updated_ts DOUBLE)")
    conn.execute("INSERT INTO incidents VALUES ('inc-1', 'open', ?)", [sim_clock.time()])
    assert ob.collect() == {"audit": 5, "incidents": 1}
    assert ob.collect() == {}  # nothing new, nothing twice
    # the same instant, a new state: still a new version (keys are content-addressed)
    conn.execute("UPDATE incidents SET status = 'closed'")
    audit.append("decision", {"i": 5})
    assert ob.collect() == {"audit": 1, "incidents": 1}
    st = ob.stats()
    assert st["pending_by_kind"]["audit"]["records"] == 6
    assert st["pending_by_kind"]["incidents"]["records"] == 2
    assert st["pending_by_kind"]["audit"]["batches"] == 1  # absorbed into the open batch of its hour
    conn.close()


def test_rollups_only_complete_minutes_from_raw_and_rolled_rows(store, sim_clock):
    t0 = sim_clock.time()  # minute-aligned
    _requests(store, t0 - 600, 600)
    sim_clock.advance(7200)
    store.retention.run()  # those 10 minutes roll into requests_1m and leave the raw table
    _requests(store, sim_clock.time() - 600, 590, seed=1)
    ob = _outbox(store, sim_clock)
    got = ob.collect()
    # 10 rolled minutes + 9 complete raw minutes; the current minute waits until it is over
    assert got["requests_1m"] == 19
    sim_clock.advance(60)
    assert ob.collect()["requests_1m"] == 1
    rows = from_parquet(ob.offer(ob.pending()[0]["seq"]))
    assert rows.column("count").to_pylist() and min(rows.column("count").to_pylist()) > 0
    assert len(set(rows.column("record_key").to_pylist())) == rows.num_rows


def test_offered_batch_is_frozen(store, sim_clock):
    ob = _outbox(store, sim_clock)
    ob.append_records("findings", [{"id": "f1", "ts": sim_clock.time(), "text": "fallback did not engage"}])
    first = ob.pending()[0]
    body = ob.offer(first["seq"])
    ob.append_records("findings", [{"id": "f2", "ts": sim_clock.time(), "text": "rollback took 340 ms"}])
    pend = ob.pending()
    assert [p["seq"] for p in pend] == [first["seq"], first["seq"] + 1]  # a new batch, not a changed one
    assert ob.offer(first["seq"]) == body
    ob.budget_bytes = 1
    ob.enforce_budget()
    assert ob.offer(first["seq"]) == body  # not downsampled or gapped once offered


def test_bad_records_are_refused_with_the_field(store, sim_clock):
    ob = _outbox(store, sim_clock)
    with pytest.raises(ValueError, match="record 1: field 'ts'"):
        ob.append_records("findings", [{"id": "a", "ts": 1.0}, {"id": "b", "ts": "soon"}])
    with pytest.raises(ValueError, match="unknown outbox kind"):
        ob.append_records("gap", [{"id": "a", "ts": 1.0}])
    assert ob.stats()["pending_batches"] == 0  # nothing half-queued


def test_budget_downsamples_bulk_then_gaps_it_and_never_drops_critical(store, sim_clock):
    ob = _outbox(store, sim_clock, budget=10_000_000)
    t0 = sim_clock.time()
    sim_clock.advance(24 * 3600 + 60)  # telemetry is in the past (the store refuses future timestamps)
    for h in range(24):  # a day of gauges for 30 series, one batch per hour per kind
        ts = t0 + h * 3600 + np.arange(0, 3600, 10.0)
        for s in range(30):
            store.ingest_samples(SampleBatch("sensor", {"s": str(s)}, ts, np.full(len(ts), float(s))))
        store.flush()
        ob.append_records("approval_requests", [{"id": f"r{h}", "ts": t0 + h * 3600}])
        ob.append("audit", pa.table({"ts": [t0 + h * 3600], "record_key": [f"audit:{h}"]}), "ts")
    ob.collect()
    before = ob.stats()
    critical_before = {k: before["pending_by_kind"][k]["records"] for k in ("audit", "approval_requests")}
    bulk = before["pending_by_kind"]["samples_1m"]["bytes"]
    ob.budget_bytes = before["pending_bytes"] - bulk // 2
    r1 = ob.enforce_budget()
    mid = ob.stats()
    assert r1["downsampled"] > 0 and r1["gapped"] == 0 and not r1["over_budget"]  # downsampling alone was enough
    assert mid["pending_bytes"] <= ob.budget_bytes
    ob.budget_bytes = 1  # impossible: everything droppable goes, critical stays
    r2 = ob.enforce_budget()
    after = ob.stats()
    assert r2["over_budget"] and r2["gapped"] > 0
    assert "samples_1m" not in after["pending_by_kind"]
    assert {k: after["pending_by_kind"][k]["records"] for k in critical_before} == critical_before
    assert after["gap_records"] == after["pending_by_kind"]["gap"]["batches"]
    assert after["dropped_records"]["samples_1m"] > 0
    gap = from_parquet(ob.offer(ob.pending(limit=1000)[-1]["seq"]))
    assert set(gap.column_names) >= {"gap_kind", "first_ts", "last_ts", "dropped_records", "record_key"}
    # seqs stay contiguous (gaps replace batches in place): the hub's watermark can reach the end
    seqs = [p["seq"] for p in ob.pending(limit=1000)]
    assert seqs == list(range(1, len(seqs) + 1))


def test_retention_never_drops_pending_batches_or_uncollected_rollups(tmp_path, sim_clock):
    store = TelemetryStore(tmp_path / "t.duckdb", StoreConfig(disk_budget_mb=2, raw_horizon_s=600,
                                                              max_past_age_s=30 * 86400), sim_clock,
                           start_writer=False)
    try:
        ob = _outbox(store, sim_clock)
        ob.protect(store.retention)
        sim_clock.advance(3600 + 60)
        _requests(store, sim_clock.time() - 3660, 3600, rps=20)
        ob.collect()
        pending = ob.stats()["pending_records"]
        sim_clock.advance(3 * 3600)
        _requests(store, sim_clock.time() - 3 * 3600, 3 * 3600, rps=100, seed=2)  # far over a 2 MB budget
        store.retention.run()
        assert ob.stats()["pending_records"] == pending  # protected
        # the rollups of the hours not yet collected survived the budget squeeze too
        got = ob.collect()
        assert got["requests_1m"] >= 179
        assert store.retention.stats()["dropped_rows"].get("requests", 0) > 0  # raw rows did go (rolled up)
    finally:
        store.close()
