"""The newest accepted rows, kept in memory: the gates' per-pass reads without DuckDB.

A live gate engine carries its windows between passes and, each pass, reads only the last few
seconds again (rows that arrived since). Those reads, and the commit that had to precede them, were
most of a quiet cycle's cost: a DuckDB query or commit has a fixed price however few rows it moves.
The store hands every chunk here the moment it accepts it into the write buffer, so the gates see a
row as soon as ingest returns, while DuckDB commits on its own (durability) rhythm.

`floor`: every accepted row with ts > floor is held here. It starts at the newest ts already on
disk when the store opened (those rows are DuckDB's alone: a restart reads them back through SQL,
once) and rises as chunks older than `horizon_s` of data time are dropped. A read reaching at or
below the floor calls `on_miss` (the store commits what it holds, so DuckDB then has every accepted
row) and returns None: the caller queries DuckDB and sees exactly the rows memory would have shown.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from samantha.telemetry.schema import JUDGED_WRITERS

_JUDGED = pa.array(JUDGED_WRITERS)
Columns = dict[str, np.ndarray]
_REQUEST_DTYPES = {"ts": np.float64, "standby": bool, "shadow": bool, "ok": bool, "latency_ms": np.float64,
                   "divergence": np.float64}


def _request_columns(tbl: pa.Table) -> Columns:
    """A committed requests table as numpy columns, judged rows only (the gates read no others).
    Bundles are dictionary-encoded once here, so a read compares small integers, not strings."""
    tbl = tbl.filter(pc.is_in(tbl.column("writer"), value_set=_JUDGED))
    bundle = pc.dictionary_encode(tbl.column("bundle")).combine_chunks()
    return {"ts": _f64(tbl, "ts"), "standby": _bool(pc.equal(tbl.column("slot"), "standby")),
            "shadow": _bool(tbl.column("shadow")), "ok": _bool(tbl.column("ok")), "latency_ms": _f64(tbl, "latency_ms"),
            "divergence": _f64(tbl, "divergence"), "bundle": bundle.indices.to_numpy(zero_copy_only=False),
            "bundles": np.asarray(bundle.dictionary.to_pylist(), dtype=object)}


def _sample_columns(tbl: pa.Table | tuple[int | np.ndarray, np.ndarray, np.ndarray]) -> Columns:
    if isinstance(tbl, tuple):  # the store's accepted chunk: (series id or ids, ts, values), numpy already
        sid, ts, value = tbl
        ids = np.full(len(ts), sid, dtype=np.int64) if isinstance(sid, int) else np.asarray(sid, dtype=np.int64)
        return {"series_id": ids, "ts": np.asarray(ts, dtype=np.float64), "value": np.asarray(value, dtype=np.float64)}
    return {"series_id": tbl.column("series_id").to_numpy().astype(np.int64), "ts": _f64(tbl, "ts"),
            "value": _f64(tbl, "value")}


def _f64(tbl: pa.Table, name: str) -> np.ndarray:
    return tbl.column(name).to_numpy().astype(np.float64)  # nulls -> NaN


def _bool(col: pa.ChunkedArray) -> np.ndarray:
    return col.to_numpy(zero_copy_only=False).astype(bool)


MERGE_ROWS, MERGE_SPAN_S = 1024, 1.0


def _merge(a: Columns, b: Columns) -> Columns:
    """Two chunks' columns as one; request bundles re-encoded over the union of both dictionaries."""
    out = {k: np.concatenate([a[k], b[k]]) for k in a if k not in ("bundle", "bundles")}
    if "bundles" in a:
        names = list(a["bundles"])
        index = {name: i for i, name in enumerate(names)}
        for name in b["bundles"]:
            if name not in index:
                index[name] = len(names)
                names.append(name)
        remap = np.asarray([index[name] for name in b["bundles"]], dtype=np.int64)
        out["bundle"] = np.concatenate([a["bundle"].astype(np.int64), remap[b["bundle"]]])
        out["bundles"] = np.asarray(names, dtype=object)
    return out


class _Tail:
    def __init__(self, floor: float, horizon_s: float, max_rows: int) -> None:
        self.floor, self.horizon_s, self.max_rows = floor, horizon_s, max_rows
        self.chunks: deque[tuple[float, float, Columns]] = deque()  # (min ts, max ts, columns), commit order
        self.newest = -math.inf
        self.rows = 0

    def add(self, cols: Columns) -> None:
        ts = cols["ts"]
        if ts.size == 0:
            return
        lo, hi = float(ts.min()), float(ts.max())
        self.rows += ts.size
        last = self.chunks[-1] if self.chunks else None
        if last is not None and last[2]["ts"].size < MERGE_ROWS and max(hi, last[1]) - min(lo, last[0]) < MERGE_SPAN_S:
            # ingest hands in many small chunks (a router push every 50 ms): a read's cost is per chunk, so the
            # newest chunk absorbs them, up to MERGE_ROWS rows and MERGE_SPAN_S of data time (the floor still rises
            # in steps that small); new arrays: a reader holding the old ones is unaffected
            plo, phi, prev = self.chunks.pop()
            lo, hi, cols = min(lo, plo), max(hi, phi), _merge(prev, cols)
        self.chunks.append((lo, hi, cols))
        self.newest = max(self.newest, hi)
        # bounded in data time and in rows (a burst must not grow memory): what is dropped raises the floor
        while self.chunks and (self.chunks[0][1] < self.newest - self.horizon_s or self.rows > self.max_rows):
            _, old_hi, old = self.chunks.popleft()
            self.rows -= old["ts"].size
            self.floor = max(self.floor, old_hi)

    def select(self, start: float, end: float) -> list[tuple[Columns, np.ndarray]] | None:
        """Per chunk holding rows with start < ts <= end, its columns and that mask; None when some of
        those rows may not be held here."""
        if start < self.floor or not self.chunks:
            return None
        out = []
        for lo, hi, cols in self.chunks:
            if hi > start and lo <= end:
                ts = cols["ts"]
                out.append((cols, (ts > start) & (ts <= end)))
        return out


class RecentRows:
    """Accepted `requests` and `samples` rows of the last `horizon_s` seconds of data time."""

    def __init__(self, requests_floor: float | None, samples_floor: float | None, horizon_s: float = 30.0,
                 max_rows: int = 200_000, on_miss: Callable[[], None] = lambda: None) -> None:
        self.on_miss = on_miss
        low = -math.inf
        self._tails = {"requests": _Tail(low if requests_floor is None else requests_floor, horizon_s, max_rows),
                       "samples": _Tail(low if samples_floor is None else samples_floor, horizon_s, max_rows)}
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def add(self, table: str, tbl: Any) -> None:
        """A chunk just accepted: an Arrow table, or for samples the store's (ids, ts, values) chunk (the write
        path converts it once; reads are numpy only)."""
        conv = {"requests": _request_columns, "samples": _sample_columns}.get(table)
        if conv is not None:
            cols = conv(tbl)
            with self._lock:
                self._tails[table].add(cols)

    def _select(self, table: str, start: float, end: float) -> list[tuple[Columns, np.ndarray]] | None:
        with self._lock:
            got = self._tails[table].select(start, end)
            if got is None:
                self.misses += 1
            else:
                self.hits += 1
        if got is None:
            self.on_miss()  # outside the lock: committing must not wait for, or block, ingest
        return got

    def requests(self, start: float, end: float, bundle: str | None = None,
                 active_bundle: str | None = None) -> Columns | None:
        """Judged request rows in (start, end] as the gates' frame columns (`in_bundle` / `in_active`: the
        row's bundle is that one; None when not asked), or None: ask DuckDB."""
        got = self._select("requests", start, end)
        if got is None:
            return None
        out = {n: np.concatenate([c[n][m] for c, m in got]) if got else np.empty(0, dtype=dt)
               for n, dt in _REQUEST_DTYPES.items()}
        for key, want in (("in_bundle", bundle), ("in_active", active_bundle)):
            if want is None:
                out[key] = None
            else:
                parts = [(c["bundle"][m] == np.flatnonzero(c["bundles"] == want)[0]) if (c["bundles"] == want).any()
                         else np.zeros(int(m.sum()), dtype=bool) for c, m in got]
                out[key] = np.concatenate(parts) if parts else np.empty(0, dtype=bool)
        return out

    def samples(self, ids: list[int], start: float, end: float) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(series_id, ts, value) of those series in (start, end], or None: ask DuckDB."""
        got = self._select("samples", start, end)
        if got is None:
            return None
        want = np.asarray(ids, dtype=np.int64)
        masks = [m & np.isin(c["series_id"], want) for c, m in got]
        cat = [np.concatenate([c[n][m] for (c, _), m in zip(got, masks, strict=True)]) if got else np.empty(0)
               for n in ("series_id", "ts", "value")]
        return cat[0].astype(np.int64), cat[1], cat[2]

    def stats(self) -> dict[str, object]:
        with self._lock:
            return {"hits": self.hits, "misses": self.misses,
                    "rows": {k: v.rows for k, v in self._tails.items()},
                    "floor": {k: (None if v.floor == -math.inf else v.floor) for k, v in self._tails.items()}}
