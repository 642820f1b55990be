"""The in-memory tail's contract: it answers only for spans it holds in full, else None (ask DuckDB)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from samantha.telemetry import schema
from samantha.telemetry.recent import RecentRows


def _requests(ts: list[float], writer: str = "router", bundle: str = "m@1") -> pa.Table:
    n = len(ts)
    return pa.table({"ts": ts, "slot": ["standby"] * n, "bundle": [bundle] * n, "latency_ms": [5.0] * n,
                     "ok": [True] * n, "divergence": [None] * n, "shadow": [False] * n, "writer": [writer] * n},
                    schema=schema.REQUESTS)


def test_a_span_below_the_floor_is_duckdbs_and_dropped_chunks_raise_the_floor() -> None:
    r = RecentRows(requests_floor=100.0, samples_floor=None, horizon_s=10.0, max_rows=1000)
    assert r.requests(90.0, 120.0) is None  # rows at or before 100 were on disk at open
    r.add("requests", _requests([101.0, 102.0]))
    r.add("requests", _requests([103.0], writer="otlp"))  # kept on disk, never judged
    got = r.requests(100.0, 120.0, bundle="m@1", active_bundle="m@9")
    assert got["ts"].tolist() == [101.0, 102.0] and got["in_bundle"].tolist() == [True, True]
    assert got["in_active"].tolist() == [False, False] and np.isnan(got["divergence"]).all()
    r.add("requests", _requests([115.0]))  # 101..102 fall out of the 10 s horizon
    assert r.requests(100.0, 120.0) is None and r.stats()["floor"]["requests"] == 102.0
    empty = r.requests(115.0, 120.0)  # nothing there, but the tail holds the span: an empty, typed answer
    assert empty["ts"].size == 0 and empty["shadow"].dtype == bool


def test_rows_are_capped_and_samples_filter_by_series() -> None:
    r = RecentRows(None, None, horizon_s=1e9, max_rows=3)
    for k in range(4):
        r.add("samples", pa.table({"ts": [float(k)], "series_id": [k % 2], "value": [k * 1.0]},
                                  schema=schema.SAMPLES))
    assert r.stats()["rows"]["samples"] == 3 and r.samples([1], -1.0, 10.0) is None  # row 0 dropped
    sid, ts, val = r.samples([1], 0.0, 10.0)
    assert sid.tolist() == [1, 1] and ts.tolist() == [1.0, 3.0] and val.tolist() == [1.0, 3.0]


def test_small_chunks_merge_and_keep_their_bundles() -> None:
    r = RecentRows(None, None, horizon_s=1e9, max_rows=10_000)
    for k in range(30):  # many small pushes within 0.3 s, alternating bundles: one chunk, every row's bundle kept
        r.add("requests", _requests([k / 100], bundle="m@1" if k % 3 else "m@2"))
    assert len(r._tails["requests"].chunks) == 1
    r.add("requests", _requests([5.0]))  # seconds later: a chunk of its own (the floor rises in small steps)
    assert len(r._tails["requests"].chunks) == 2
    got = r.requests(-1.0, 1.0, bundle="m@2", active_bundle="m@1")
    assert got["ts"].tolist() == [k / 100 for k in range(30)]
    assert got["in_bundle"].tolist() == [k % 3 == 0 for k in range(30)]
    assert got["in_active"].tolist() == [k % 3 != 0 for k in range(30)]
