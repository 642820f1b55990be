"""The newest committed rows, kept in memory: the gates' per-pass reads without a DuckDB query.

A live gate engine carries its windows between passes and, each pass, reads only the last few
seconds again (rows that arrived since). Those reads were most of a quiet cycle's cost: a DuckDB
query has a fixed price however few rows it returns. The store hands every committed Arrow table
here, in the same step that makes it visible in DuckDB, so a read from memory sees exactly the rows
a query would see at that moment: gate semantics do not change.

`floor`: every committed row with ts > floor is held here. It starts at the newest ts already on
disk when the store opened (those rows are DuckDB's alone: a restart reads them back through SQL,
once) and rises as chunks older than `horizon_s` of data time are dropped. A read reaching at or
below the floor returns None and the caller queries DuckDB.
"""

from __future__ import annotations

import math
import threading
from collections import deque

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from samantha.telemetry.schema import JUDGED_WRITERS

_JUDGED = pa.array(JUDGED_WRITERS)


class _Tail:
    def __init__(self, floor: float, horizon_s: float) -> None:
        self.floor, self.horizon_s = floor, horizon_s
        self.chunks: deque[tuple[float, float, pa.Table]] = deque()  # (min ts, max ts, rows) in commit order
        self.newest = -math.inf

    def add(self, tbl: pa.Table) -> None:
        if tbl.num_rows == 0:
            return
        lo, hi = pc.min_max(tbl.column("ts")).values()
        lo, hi = float(lo.as_py()), float(hi.as_py())
        self.chunks.append((lo, hi, tbl))
        self.newest = max(self.newest, hi)
        while self.chunks and self.chunks[0][1] < self.newest - self.horizon_s:
            self.floor = max(self.floor, self.chunks.popleft()[1])

    def select(self, start: float, end: float) -> pa.Table | None:
        """Rows with start < ts <= end, or None when some of them may not be held here."""
        if start < self.floor:
            return None
        parts = [t for lo, hi, t in self.chunks if hi > start and lo <= end]
        if not parts:
            return None if not self.chunks else self.chunks[0][2].slice(0, 0)
        t = parts[0] if len(parts) == 1 else pa.concat_tables(parts)
        ts = t.column("ts")
        return t.filter(pc.and_(pc.greater(ts, start), pc.less_equal(ts, end)))


class RecentRows:
    """Committed `requests` and `samples` rows of the last `horizon_s` seconds of data time."""

    def __init__(self, requests_floor: float | None, samples_floor: float | None, horizon_s: float = 30.0) -> None:
        low = -math.inf
        self._tails = {"requests": _Tail(low if requests_floor is None else requests_floor, horizon_s),
                       "samples": _Tail(low if samples_floor is None else samples_floor, horizon_s)}
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def add(self, table: str, tbl: pa.Table) -> None:
        tail = self._tails.get(table)
        if tail is not None:
            with self._lock:
                tail.add(tbl)

    def _select(self, table: str, start: float, end: float) -> pa.Table | None:
        with self._lock:
            t = self._tails[table].select(start, end)
            if t is None:
                self.misses += 1
            else:
                self.hits += 1
            return t

    def requests(self, start: float, end: float) -> pa.Table | None:
        """Judged request rows (the router's and in-process ones) in (start, end], or None: ask DuckDB."""
        t = self._select("requests", start, end)
        if t is None:
            return None
        return t.filter(pc.is_in(t.column("writer"), value_set=_JUDGED))

    def samples(self, ids: list[int], start: float, end: float) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(series_id, ts, value) of those series in (start, end], or None: ask DuckDB."""
        t = self._select("samples", start, end)
        if t is None:
            return None
        t = t.filter(pc.is_in(t.column("series_id"), value_set=pa.array(ids, type=pa.int64())))
        return (t.column("series_id").to_numpy().astype(np.int64), t.column("ts").to_numpy().astype(np.float64),
                t.column("value").to_numpy().astype(np.float64))

    def stats(self) -> dict[str, object]:
        with self._lock:
            return {"hits": self.hits, "misses": self.misses,
                    "rows": {k: sum(c[2].num_rows for c in v.chunks) for k, v in self._tails.items()},
                    "floor": {k: (None if v.floor == -math.inf else v.floor) for k, v in self._tails.items()}}
