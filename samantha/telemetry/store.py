"""The DuckDB telemetry store: validated ingest, a bounded write buffer, group commit, reads.

Producers (any thread) validate and queue columnar chunks; one committer thread drains the
buffer every `flush_interval_ms` (sooner when it fills) and writes everything queued in one
transaction as one Arrow insert per table. Readers use their own DuckDB cursor per thread,
so `read_arrow` is safe while ingest runs and sees every committed row.

The fast path for generic metrics is `SampleBatch` (numpy columns for one metric + label
set): validation is a few vectorised passes, never a pydantic model per row.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from samantha.core.clock import REAL_CLOCK, Clock
from samantha.core.config import SamanthaConfig, StoreConfig
from samantha.core.transaction import transaction
from samantha.telemetry import schema
from samantha.telemetry.buffer import WriteBuffer
from samantha.telemetry.cardinality import SeriesRegistry
from samantha.telemetry.recent import RecentRows
from samantha.telemetry.retention import Retention
from samantha.telemetry.validation import (
    MAX_NAME_CHARS,
    OUT_OF_RANGE,
    SLOTS,
    WRONG_TYPE,
    IngestResult,
    Limits,
    RecordError,
    Reject,
    bad_float_rows,
    check_event,
    check_labels,
    check_metric_name,
    check_request,
    check_sample,
    float_column,
    is_sequence,
)

log = logging.getLogger(__name__)

_SAMPLE_BYTES = 24
_REQUEST_BYTES = 48  # fixed columns + string headers; bundle text added per row


@dataclass
class SampleBatch:
    """Many points of one series: the cheap way to hand samples in (columns, not rows)."""

    metric: str
    labels: dict[str, str]
    ts: Any  # sequence / ndarray of epoch seconds
    values: Any  # same length

    def __len__(self) -> int:
        return len(self.values)


@dataclass
class StoreStats:
    accepted: Counter = field(default_factory=Counter)  # by table
    rejected: Counter = field(default_factory=Counter)  # by reason
    commits: int = 0
    committed_rows: Counter = field(default_factory=Counter)  # by table
    commit_errors: int = 0
    lost_rows: int = 0  # rows in a failed commit (disk error): counted, never silently
    last_commit_ts: float | None = None
    last_commit_ms: float = 0.0
    visibility_lag_ms: deque = field(default_factory=lambda: deque(maxlen=1000))  # recent commits


class TelemetryStore:
    def __init__(self, path: str | Path, cfg: StoreConfig | None = None, clock: Clock = REAL_CLOCK,
                 *, start_writer: bool = True) -> None:
        self.cfg = cfg or StoreConfig()
        self.clock = clock
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._con = duckdb.connect(str(self.path))
        self._con.execute(f"SET memory_limit='{int(self.cfg.memory_limit_mb)}MB'")
        self._con.execute(f"SET threads={int(self.cfg.threads)}")
        schema.create_schema(self._con)
        self._write_lock = threading.RLock()
        self.buffer = WriteBuffer(self.cfg.buffer_max_rows, self.cfg.buffer_max_bytes, self.cfg.block_timeout_s)
        self.series = SeriesRegistry(self.cfg.series_budget, self.cfg.metric_budget)
        self.series.load(self._con.execute("SELECT id, metric, labels_key FROM series").fetchall())
        # the newest accepted rows in memory (gates' per-pass reads); rows already on disk stay DuckDB's. A read
        # memory cannot answer commits first, so the SQL it falls back to sees every accepted row too.
        self.recent = RecentRows(*(self._con.execute(f"SELECT max(ts) FROM {t}").fetchone()[0]
                                   for t in ("requests", "samples")), on_miss=self._commit_if_open)
        self._stats = StoreStats()
        self._stats_lock = threading.Lock()
        self._local = threading.local()
        self._cursors: list[Any] = []
        self._cursor_lock = threading.Lock()
        self._closed = False
        self.retention = Retention(self)
        self._backstop_s: float | None = None  # set by `commit_for_durability`
        self._writer: threading.Thread | None = None
        if start_writer:
            self._writer = threading.Thread(target=self._run_writer, name="telemetry-writer", daemon=True)
            self._writer.start()

    @classmethod
    def open(cls, config: SamanthaConfig, clock: Clock = REAL_CLOCK, **kw: Any) -> TelemetryStore:
        return cls(config.store_path, config.store, clock, **kw)

    def __enter__(self) -> TelemetryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------- ingest ----------------

    def limits(self) -> Limits:
        return Limits.from_config(self.cfg, self.clock.time())

    def ingest_samples(self, records: SampleBatch | Iterable[Any]) -> IngestResult:
        """Samples as SampleBatch(es), `Sample`s or dicts {metric, labels, ts, value}.

        Reject indices count rows in the order given, a SampleBatch contributing len(batch) rows.
        """
        limits = self.limits()
        if isinstance(records, SampleBatch):
            return self._ingest_batch(records, 0, limits)
        result = IngestResult()
        rows: list[Any] = []
        row_index: list[int] = []
        offset = 0
        for rec in records:
            if isinstance(rec, SampleBatch):
                result.merge(self._ingest_batch(rec, offset, limits))
                offset += len(rec)
            else:
                rows.append(rec)
                row_index.append(offset)
                offset += 1
        if rows:
            result.merge(self._ingest_sample_rows(rows, row_index, limits))
        return result

    def _ingest_batch(self, b: SampleBatch, offset: int, limits: Limits) -> IngestResult:
        try:
            n = len(b.values)
            metric = check_metric_name(b.metric)
            labels = check_labels(b.labels, limits)
            ts = float_column("ts", b.ts, n)
            values = float_column("value", b.values, n)
        except RecordError as e:
            n = _safe_len(b.values)
            return self._rejected([Reject(offset + i, e.field, e.reason, e.detail) for i in range(n)])
        except TypeError as e:
            return self._rejected([Reject(offset, "values", WRONG_TYPE, str(e))])
        bad = bad_float_rows("ts", ts, ts_limits=limits) + bad_float_rows("value", values)
        rejects: list[Reject] = []
        if bad:
            keep = np.ones(n, dtype=bool)
            for i, f, r, d in bad:
                if keep[i]:
                    keep[i] = False
                    rejects.append(Reject(offset + i, f, r, d))
            ts, values = ts[keep], values[keep]
            rejects.sort(key=lambda r: r.index)
        else:
            ts, values = ts.copy(), values.copy()  # the caller may reuse its arrays
        m = len(ts)
        result = self._rejected(rejects)
        if m:
            sid = self.series.resolve(metric, labels)
            self._put("samples", (sid, ts, values), m, m * _SAMPLE_BYTES, result)
        return result

    def _ingest_sample_rows(self, rows: list[Any], index: list[int], limits: Limits) -> IngestResult:
        sids: list[int] = []
        tss: list[float] = []
        vals: list[float] = []
        rejects: list[Reject] = []
        resolve = self.series.resolve
        for i, rec in zip(index, rows, strict=True):
            try:
                metric, labels, ts, value = check_sample(rec, limits)
            except RecordError as e:
                rejects.append(Reject(i, e.field, e.reason, e.detail))
                continue
            sids.append(resolve(metric, labels))
            tss.append(ts)
            vals.append(value)
        result = self._rejected(rejects)
        if sids:
            chunk = (np.asarray(sids, dtype=np.int64), np.asarray(tss, dtype=np.float64),
                     np.asarray(vals, dtype=np.float64))
            self._put("samples", chunk, len(sids), len(sids) * _SAMPLE_BYTES, result)
        return result

    def ingest_requests(self, records: Iterable[Any], writer: str = schema.LOCAL_WRITER) -> IngestResult:
        """`RequestEvent`s or dicts. For high rates use `ingest_request_columns`. `writer`: who sent them."""
        limits = self.limits()
        return self._ingest_rows("requests", schema.REQUESTS, records,
                                 lambda rec: (*check_request(rec, limits), writer))

    def _ingest_rows(self, table: str, arrow_schema: pa.Schema, records: Iterable[Any],
                     check: Callable[[Any], Sequence[Any]]) -> IngestResult:
        """Each record checked into a row (a bad one rejected by its index), the good ones put as one Arrow table."""
        cols: list[list[Any]] = [[] for _ in arrow_schema]
        rejects: list[Reject] = []
        for i, rec in enumerate(records):
            try:
                row = check(rec)
            except RecordError as e:
                rejects.append(Reject(i, e.field, e.reason, e.detail))
                continue
            for c, v in zip(cols, row, strict=True):
                c.append(v)
        result = self._rejected(rejects)
        if cols[0]:
            tbl = pa.Table.from_arrays([pa.array(c, type=f.type) for c, f in zip(cols, arrow_schema, strict=True)],
                                       schema=arrow_schema)
            self._put(table, tbl, tbl.num_rows, tbl.nbytes, result)
        return result

    def ingest_request_columns(self, ts: Any, slot: Any, bundle: Any, latency_ms: Any, ok: Any,
                               divergence: Any = None, shadow: Any = False,
                               writer: str = schema.LOCAL_WRITER) -> IngestResult:
        """Columnar requests: numpy arrays or lists; a scalar broadcasts to every row.

        `divergence`: None (not compared), or floats where NaN/None mean "not compared".
        """
        limits = self.limits()
        n = _safe_len(ts)
        cols_in = dict(ts=ts, slot=slot, bundle=bundle, latency_ms=latency_ms, ok=ok, divergence=divergence,
                       shadow=shadow)
        for name, col in cols_in.items():
            if is_sequence(col) and len(col) != n:
                return self._rejected([Reject(i, name, WRONG_TYPE, f"column has {len(col)} values, ts has {n}")
                                       for i in range(n)])
        try:
            ts_a = float_column("ts", ts, n)
            lat = float_column("latency_ms", latency_ms, n)
            ok_a = _bool_column("ok", ok, n)
            sh_a = _bool_column("shadow", shadow, n)
            div = np.full(n, np.nan) if divergence is None else float_column("divergence", _nan_for_none(divergence), n)
            slot_a = _string_column("slot", slot, n)
            bundle_a = _string_column("bundle", bundle, n)
        except (RecordError, TypeError, ValueError, pa.ArrowException):
            return self.ingest_requests(_column_rows(n, cols_in), writer)  # slow path names each bad row
        bad = (bad_float_rows("ts", ts_a, ts_limits=limits) + bad_float_rows("latency_ms", lat, lo=0.0)
               + bad_float_rows("divergence", div, lo=0.0, nullable=True))
        slot_ok = pc.is_in(slot_a, value_set=pa.array(SLOTS))
        if not pc.all(slot_ok).as_py():
            bad += [(int(i), "slot", OUT_OF_RANGE, f"must be one of {SLOTS}")
                    for i in np.flatnonzero(~slot_ok.to_numpy(zero_copy_only=False))]
        blen = pc.utf8_length(bundle_a)
        bundle_ok = pc.and_(pc.greater(blen, 0), pc.less_equal(blen, MAX_NAME_CHARS))
        if not pc.all(bundle_ok).as_py():
            bad += [(int(i), "bundle", OUT_OF_RANGE, f"length must be 1..{MAX_NAME_CHARS}")
                    for i in np.flatnonzero(~bundle_ok.to_numpy(zero_copy_only=False))]
        rejects: list[Reject] = []
        cols = [ts_a, slot_a, bundle_a, lat, ok_a, div, sh_a]
        if bad:
            keep = np.ones(n, dtype=bool)
            for i, f, r, d in sorted(bad):
                if keep[i]:
                    keep[i] = False
                    rejects.append(Reject(i, f, r, d))
            mask = pa.array(keep)
            cols = [c[keep] if isinstance(c, np.ndarray) else c.filter(mask) for c in cols]
        result = self._rejected(rejects)
        m = len(cols[0])
        if m:
            cols.append(pa.array([writer] * m, type=pa.string()))
            arrays = [pa.array(c, type=f.type, from_pandas=(f.name == "divergence")) if isinstance(c, np.ndarray)
                      else c for c, f in zip(cols, schema.REQUESTS, strict=True)]
            tbl = pa.Table.from_arrays(arrays, schema=schema.REQUESTS)
            self._put("requests", tbl, m, tbl.nbytes, result)
        return result

    def ingest_events(self, records: Iterable[Any], writer: str = schema.LOCAL_WRITER) -> IngestResult:
        """`Event`s or dicts {ts, kind, source, severity, attrs}; `writer`: who sent them."""
        limits = self.limits()
        return self._ingest_rows("events", schema.EVENTS, records,
                                 lambda rec: (*check_event(rec, limits, _dumps), writer))

    def emit_event(self, kind: str, attrs: Mapping[str, Any] | None = None, *, source: str = "telemetry",
                   severity: str = "info") -> None:
        self.ingest_events([{"ts": self.clock.time(), "kind": kind, "source": source, "severity": severity,
                             "attrs": dict(attrs or {})}])

    def count_rejects(self, rejects: list[Reject]) -> IngestResult:
        """Count rejections found before the store saw the records (e.g. malformed JSON lines)."""
        return self._rejected(rejects)

    def _rejected(self, rejects: list[Reject]) -> IngestResult:
        if rejects:
            with self._stats_lock:
                for r in rejects:
                    self._stats.rejected[r.reason] += 1
        return IngestResult(0, rejects)

    def _put(self, table: str, chunk: Any, rows: int, nbytes: int, result: IngestResult) -> None:
        if self.buffer.put(table, (chunk, rows, nbytes), rows, nbytes):
            self.recent.add(table, chunk)  # the gates see it now; DuckDB at the next commit
            result.accepted += rows
            with self._stats_lock:
                self._stats.accepted[table] += rows
        else:
            result.shed += rows

    # ---------------- group commit ----------------

    def commit_for_durability(self) -> None:
        """The daemon's rhythm: its gates read accepted rows from memory (`recent`), so nothing waits for a commit
        to see telemetry. From now on the writer thread commits what waited `daemon_commit_ms` (what a crash may
        lose, and how late SQL readers such as reports and the API's queries see rows) or a pressing buffer."""
        self._backstop_s = self.cfg.daemon_commit_ms / 1000.0

    def _run_writer(self) -> None:
        interval = self.cfg.flush_interval_ms / 1000.0
        next_retention = time.monotonic() + self.cfg.retention_interval_s
        while not self._closed:
            woken = self.buffer.wakeup.wait(interval)
            self.buffer.wakeup.clear()
            try:
                backstop = self._backstop_s
                if (backstop is None or self._closed or (woken and self.buffer.pressing())
                        or self.buffer.oldest_wait_s() >= backstop):
                    self._commit()
                if time.monotonic() >= next_retention:
                    next_retention = time.monotonic() + self.cfg.retention_interval_s
                    self.retention.run()
            except Exception:  # the writer must outlive any one bad commit
                log.exception("telemetry writer cycle failed")

    def flush(self) -> None:
        """Commit everything queued so far, now, in the calling thread."""
        self._commit()

    def commit_new_series(self) -> None:
        """Before series metadata is read from DuckDB: commit when a series is new since the last commit (rare)."""
        if self.series.has_pending():
            self._commit_if_open()

    def _commit_if_open(self) -> None:
        if not self._closed:
            self._commit()

    def _commit(self) -> None:
        with self._write_lock:
            new_series, first_folds = self.series.take_pending()
            for metric in first_folds:
                self.emit_event("cardinality_overflow", {"metric": metric, "series_budget": self.cfg.series_budget},
                                severity="warning")
            taken, first_put_at = self.buffer.take()
            if not new_series and not taken:
                return
            rows = sum(r for chunks in taken.values() for _, r, _ in chunks)
            nbytes = sum(b for chunks in taken.values() for _, _, b in chunks)
            t0 = time.perf_counter()
            try:
                tables = {name: _BUILDERS[name]([c for c, _, _ in chunks]) for name, chunks in taken.items() if chunks}
                with transaction(self._con) as con:
                    if new_series:
                        _insert(con, "series", pa.table({
                            "id": [s.id for s in new_series], "metric": [s.metric for s in new_series],
                            "labels_key": [s.labels_key for s in new_series],
                            "labels": [s.labels_json for s in new_series]}, schema=schema.SERIES))
                    for name, tbl in tables.items():
                        _insert(con, name, tbl)
            except Exception:
                log.exception("telemetry commit failed; %d rows lost", rows)
                self.series.requeue(new_series)
                with self._stats_lock:
                    self._stats.commit_errors += 1
                    self._stats.lost_rows += rows
                raise
            finally:
                self.buffer.release(rows, nbytes)
            with self._stats_lock:
                s = self._stats
                s.commits += 1
                for name, tbl in tables.items():
                    s.committed_rows[name] += tbl.num_rows
                s.last_commit_ts = self.clock.time()
                s.last_commit_ms = (time.perf_counter() - t0) * 1000
                if first_put_at is not None:  # how long the oldest row of this commit waited to become visible
                    s.visibility_lag_ms.append((time.monotonic() - first_put_at) * 1000)

    # ---------------- reads ----------------

    def _cursor(self) -> Any:
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            if self._closed:
                raise RuntimeError("telemetry store is closed")
            cur = self._con.cursor()
            self._local.cursor = cur
            with self._cursor_lock:
                self._cursors.append(cur)
        return cur

    def read_arrow(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> pa.Table:
        """Run one read-only statement (SELECT / WITH ...) and return its rows as Arrow.

        Safe from any thread while ingest runs: each thread reads through its own cursor.
        """
        stmts = duckdb.extract_statements(sql)
        if len(stmts) != 1 or stmts[0].type != duckdb.StatementType.SELECT:
            raise ValueError("read_arrow takes exactly one SELECT statement")
        return self._cursor().sql(sql, params=params).to_arrow_table()

    def query_scalar(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        t = self.read_arrow(sql, params)
        return t.column(0)[0].as_py() if t.num_rows else None

    def write_sql(self, sql: str, params: Sequence[Any] | None = None) -> None:
        """A maintenance statement (retention, export) serialised with group commits."""
        with self._write_lock:
            self._con.execute(sql, params) if params is not None else self._con.execute(sql)

    @contextlib.contextmanager
    def writer(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The write connection under the write lock, for maintenance that runs its own statements and
        transactions (retention's roll-up and delete). Group commits wait until the block ends."""
        with self._write_lock:
            yield self._con

    def connection(self) -> Any:
        """A new connection to the same database, for a subsystem that runs its own transactions on its own
        tables (audit, alerts). Not thread-safe by itself; the caller serialises its use and closes it."""
        if self._closed:
            raise RuntimeError("telemetry store is closed")
        return self._con.cursor()

    # ---------------- lifecycle & stats ----------------

    def stats(self) -> dict[str, Any]:
        with self._stats_lock:
            s = self._stats
            out = {
                "accepted": sum(s.accepted.values()),
                "accepted_by_table": dict(s.accepted),
                "rejected": sum(s.rejected.values()),
                "rejected_by_reason": dict(s.rejected),
                "committed_by_table": dict(s.committed_rows),
                "commits": s.commits,
                "commit_errors": s.commit_errors,
                "lost_rows": s.lost_rows,
                "last_commit_ts": s.last_commit_ts,
                "last_commit_ms": round(s.last_commit_ms, 3),
                "visibility_lag_ms": _lag_summary(s.visibility_lag_ms),
            }
        out.update({
            "shed": self.buffer.shed_rows,
            "shed_batches": self.buffer.shed_chunks,
            "buffer_rows": self.buffer.rows,
            "buffer_bytes": self.buffer.bytes,
            "folds": self.series.folds,
            "folds_by_metric": dict(self.series.folds_by_metric),
            "series": self.series.size(),
            "retention": self.retention.stats(),
            "recent": self.recent.stats(),
        })
        return out

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.buffer.close()
        if self._writer is not None:
            self._writer.join(timeout=30)
        try:
            self._commit()
        finally:
            with self._cursor_lock:
                for cur in self._cursors:
                    cur.close()
                self._cursors.clear()
            with self._write_lock:
                self._con.execute("CHECKPOINT")
                self._con.close()


# ---------------- helpers ----------------

def _insert(con: Any, table: str, tbl: pa.Table) -> None:
    con.register("_samantha_buf", tbl)
    try:
        cols = ", ".join(f"CAST({c} AS JSON)" if (table, c) in _JSON_COLS else c for c in tbl.column_names)
        con.execute(f"INSERT INTO {table} SELECT {cols} FROM _samantha_buf")
    finally:
        con.unregister("_samantha_buf")


_JSON_COLS = {("series", "labels"), ("events", "attrs")}


def _build_samples(chunks: list[tuple[Any, np.ndarray, np.ndarray]]) -> pa.Table:
    sids = [np.full(len(ts), sid, dtype=np.int64) if isinstance(sid, int) else sid for sid, ts, _ in chunks]
    return pa.Table.from_arrays(
        [pa.array(np.concatenate([c[1] for c in chunks])), pa.array(np.concatenate(sids)),
         pa.array(np.concatenate([c[2] for c in chunks]))], schema=schema.SAMPLES)


def _build_concat(chunks: list[pa.Table]) -> pa.Table:
    return chunks[0] if len(chunks) == 1 else pa.concat_tables(chunks)


_BUILDERS = {"samples": _build_samples, "requests": _build_concat, "events": _build_concat}


def _lag_summary(lags: deque) -> dict[str, float] | None:
    if not lags:
        return None
    a = np.fromiter(lags, dtype=np.float64)
    return {"p50": round(float(np.percentile(a, 50)), 2), "p99": round(float(np.percentile(a, 99)), 2),
            "max": round(float(a.max()), 2), "commits": len(a)}


def _dumps(obj: Any) -> str:
    return json.dumps(obj, allow_nan=False, separators=(",", ":"))


def _safe_len(v: Any) -> int:
    try:
        return len(v)
    except TypeError:
        return 1


def _bool_column(name: str, v: Any, n: int) -> np.ndarray:
    if isinstance(v, bool | np.bool_):
        return np.full(n, bool(v))
    arr = np.asarray(v)
    if arr.dtype != np.bool_ or arr.shape != (n,):
        raise RecordError(name, WRONG_TYPE, "expected booleans")
    return arr


def _string_column(name: str, v: Any, n: int) -> pa.Array:
    if isinstance(v, str):
        return pa.array([v] * n, type=pa.string()) if n else pa.array([], type=pa.string())
    arr = v if isinstance(v, pa.Array) else pa.array(list(v) if isinstance(v, np.ndarray) else v, type=pa.string())
    if len(arr) != n or arr.null_count:
        raise RecordError(name, WRONG_TYPE, "expected strings")
    return arr


def _nan_for_none(v: Any) -> Any:
    if is_sequence(v) and not isinstance(v, np.ndarray):
        return [np.nan if x is None else x for x in v]
    return v


def _column_rows(n: int, cols: dict[str, Any]) -> list[Any]:
    """Columns back into row dicts (the slow path that names each bad row)."""
    out: list[Any] = []
    seqs = {k: (list(v) if is_sequence(v) else None) for k, v in cols.items()}
    for i in range(n):
        row = {}
        for k, v in cols.items():
            s = seqs[k]
            x = s[i] if s is not None else v
            if hasattr(x, "item"):
                x = x.item()
            if k == "divergence" and isinstance(x, float) and x != x:
                x = None
            if x is not None or k != "divergence":
                row[k] = x
        out.append(row)
    return out
