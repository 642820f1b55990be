"""In the daemon the loop commits before it reads; the writer thread is only a backstop then."""

from __future__ import annotations

import time
from pathlib import Path

from samantha.core.config import StoreConfig
from samantha.telemetry.store import TelemetryStore


def _row(ts: float) -> dict:
    return {"ts": ts, "slot": "active", "bundle": "m@1", "latency_ms": 10.0, "ok": True}


def test_writer_defers_to_the_loop_but_commits_what_waited_the_backstop(tmp_path: Path) -> None:
    with TelemetryStore(tmp_path / "t.duckdb", StoreConfig(flush_interval_ms=20, loop_backstop_ms=600)) as store:
        store.commit_on_loop()
        t0 = time.monotonic()
        assert store.ingest_requests([_row(time.time())]).accepted == 1
        time.sleep(0.2)
        if time.monotonic() - t0 < 0.55:  # (a stalled test process proves nothing about the backstop)
            assert store.stats()["commits"] == 0, "the timer committed although the loop owns the rhythm"
        store.flush()  # the loop's commit: visible at once, in DuckDB and in memory
        assert store.query_scalar("SELECT count(*) FROM requests") == 1
        assert store.recent.requests(0, time.time() + 1)["ts"].size == 1
        store.ingest_requests([_row(time.time())])
        deadline = time.monotonic() + 10
        while store.stats()["commits"] < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert store.query_scalar("SELECT count(*) FROM requests") == 2, "the backstop did not commit a stalled loop's rows"


def test_a_pressing_buffer_commits_without_waiting_for_the_loop(tmp_path: Path) -> None:
    cfg = StoreConfig(flush_interval_ms=20, loop_backstop_ms=5000, buffer_max_rows=40)
    with TelemetryStore(tmp_path / "t.duckdb", cfg) as store:
        store.commit_on_loop()
        now = time.time()
        assert store.ingest_requests([_row(now + i * 1e-3) for i in range(20)]).accepted == 20  # > a quarter
        deadline = time.monotonic() + 4
        while store.stats()["commits"] < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert store.query_scalar("SELECT count(*) FROM requests") == 20
