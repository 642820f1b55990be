"""In the daemon the gates read accepted rows from memory; DuckDB commits on the durability rhythm."""

from __future__ import annotations

import time
from pathlib import Path

from samantha.core.config import StoreConfig
from samantha.gates.windows import RequestFrame
from samantha.telemetry.store import TelemetryStore


def _row(ts: float) -> dict:
    return {"ts": ts, "slot": "active", "bundle": "m@1", "latency_ms": 10.0, "ok": True}


def test_rows_are_readable_from_memory_at_once_and_committed_after_the_durability_period(tmp_path: Path) -> None:
    with TelemetryStore(tmp_path / "t.duckdb", StoreConfig(flush_interval_ms=20, daemon_commit_ms=600)) as store:
        store.commit_for_durability()
        t0 = time.monotonic()
        now = time.time()
        assert store.ingest_requests([_row(now)]).accepted == 1
        frame = RequestFrame.fetch(store, now - 1, now + 1)  # what a gate reads: no commit needed, none made
        time.sleep(0.2)
        if time.monotonic() - t0 < 0.55:  # (a stalled test process proves nothing about the period)
            assert store.stats()["commits"] == 0, "the timer committed before the durability period"
            assert store.query_scalar("SELECT count(*) FROM requests") == 0
        assert frame.ts.size == 1 and store.recent.stats()["misses"] == 0
        deadline = time.monotonic() + 10
        while store.stats()["commits"] < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert store.query_scalar("SELECT count(*) FROM requests") == 1, "the durability period did not commit"


def test_a_read_memory_cannot_answer_commits_first(tmp_path: Path) -> None:
    path = tmp_path / "t.duckdb"
    now = time.time()
    with TelemetryStore(path, start_writer=False) as store:
        store.ingest_requests([_row(now - 100)])  # on disk at the reopen: below the in-memory tail
    with TelemetryStore(path, start_writer=False) as store:
        store.ingest_requests([_row(now)])
        assert store.stats()["commits"] == 0
        frame = RequestFrame.fetch(store, now - 200, now + 1)  # reaches below the tail: SQL, after a commit
        assert frame.ts.tolist() == [now - 100, now] and store.stats()["commits"] == 1


def test_a_pressing_buffer_commits_without_waiting_for_the_period(tmp_path: Path) -> None:
    cfg = StoreConfig(flush_interval_ms=20, daemon_commit_ms=5000, buffer_max_rows=40)
    with TelemetryStore(tmp_path / "t.duckdb", cfg) as store:
        store.commit_for_durability()
        now = time.time()
        assert store.ingest_requests([_row(now + i * 1e-3) for i in range(20)]).accepted == 20  # > a quarter
        deadline = time.monotonic() + 4
        while store.stats()["commits"] < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert store.query_scalar("SELECT count(*) FROM requests") == 20
