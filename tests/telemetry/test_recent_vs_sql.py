"""Property: what the gates read from memory before any commit equals what SQL reads after one.

A real DuckDB file per example: some rows committed and the store reopened (they are on disk only: the
in-memory tail starts above them), then random batches accepted and never committed. Every window read
through the gates' frame (`RequestFrame.fetch`, `recent.samples`) must return exactly the rows a SQL
read returns once everything is committed; a window reaching below the tail commits first and asks SQL.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from samantha.gates.windows import RequestFrame
from samantha.telemetry.store import SampleBatch, TelemetryStore

T0 = 1_800_000_000.0

_row = st.tuples(st.floats(0, 60, allow_nan=False), st.sampled_from(["active", "standby"]),
                 st.sampled_from(["m@1", "m@2"]), st.floats(0, 500, allow_nan=False), st.booleans(),
                 st.one_of(st.none(), st.floats(0, 1, allow_nan=False)), st.booleans())
_batch = st.tuples(st.sampled_from(["router", "otlp"]), st.lists(_row, min_size=1, max_size=12))
_samples = st.lists(st.tuples(st.integers(0, 2), st.floats(0, 60, allow_nan=False), st.floats(-1e3, 1e3)),
                    max_size=20)
_window = st.tuples(st.floats(-5, 65, allow_nan=False), st.floats(0, 40, allow_nan=False))


class _SqlOnly:
    def __init__(self, store: TelemetryStore) -> None:
        self.read_arrow = store.read_arrow


def _put(store: TelemetryStore, batches: list, samples: list) -> None:
    for writer, rows in batches:
        ts, slot, bundle, lat, ok, div, shadow = (list(c) for c in zip(*rows, strict=True))
        store.ingest_request_columns(np.asarray(ts) + T0, slot, bundle, lat, np.asarray(ok), div,
                                     np.asarray(shadow), writer=writer)
    for series, ts, value in samples:
        store.ingest_samples(SampleBatch("m", {"s": str(series)}, [T0 + ts], [value]))


def _rows(f: RequestFrame) -> list[tuple[Any, ...]]:
    cols = [f.ts, f.standby, f.shadow, f.ok, f.latency_ms, np.nan_to_num(f.divergence, nan=-1.0), f.in_bundle,
            f.in_active]
    return sorted(zip(*(c.tolist() for c in cols), strict=True))


@settings(max_examples=40, deadline=None)
@given(on_disk=st.lists(_batch, max_size=3), disk_samples=_samples, batches=st.lists(_batch, min_size=1, max_size=5),
       samples=_samples, windows=st.lists(_window, min_size=1, max_size=6))
def test_memory_before_commit_equals_sql_after(on_disk: list, disk_samples: list, batches: list, samples: list,
                                               windows: list) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "t.duckdb"
        with TelemetryStore(path, start_writer=False) as store:
            _put(store, on_disk, disk_samples)  # committed at close: DuckDB's alone after the reopen
        with TelemetryStore(path, start_writer=False) as store:
            _put(store, batches, samples)
            ids = [store.series.resolve("m", {"s": str(k)}) for k in range(3)]
            mem = []
            for lo, span in windows:  # no commit in between, unless a window reaches below the tail
                start, end = T0 + lo, T0 + lo + span
                mem.append((_rows(RequestFrame.fetch(store, start, end, "m@2", "m@1")),
                            store.recent.samples(ids, start, end)))
            store.flush()
            assert store.stats()["buffer_rows"] == 0
            for (lo, span), (mem_rows, mem_samples) in zip(windows, mem, strict=True):
                start, end = T0 + lo, T0 + lo + span
                assert mem_rows == _rows(RequestFrame.fetch(_SqlOnly(store), start, end, "m@2", "m@1"))
                if mem_samples is not None:  # None: below the tail, the gates asked SQL (after a commit)
                    sql = store.read_arrow("SELECT series_id, ts, value FROM samples WHERE series_id IN (?, ?, ?) "
                                           "AND ts > ? AND ts <= ?", [*ids, start, end])
                    want = sorted(zip(*(sql.column(c).to_pylist() for c in ("series_id", "ts", "value")),
                                      strict=True))
                    assert sorted(zip(*(a.tolist() for a in mem_samples), strict=True)) == want
