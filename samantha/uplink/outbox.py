"""The durable outbox: Reported State waiting for the hub, in the daemon's DuckDB file.

Records are grouped into batches. Each batch has a sequence number (contiguous from 1
within an outbox *epoch*, a random id made once per outbox) and a batch id
`<epoch>-<seq>`; its payload is one Parquet file whose rows all carry a stable
`record_key`. The hub stores a batch once per id and acks with a watermark: every seq
up to it is stored.

While a batch has never been offered to the hub (`attempts = 0`) it may still change:
it absorbs newer records of its kind for up to `batch_span_s` (so a week offline makes
a few hundred batches, not tens of thousands), and under the disk budget it is
downsampled or replaced by a gap record. Once offered, a batch is frozen: a resend
after a lost ack must carry the same content under the same id.

Classes, in the order the budget takes from them:
- bulk (metric rollups): downsampled 60 s -> 10 min -> 1 h first, then, oldest first,
  replaced by a *gap record* (same seq and id, payload = what was dropped, counted);
- important (alerts, findings, proposed gates): replaced by gap records only when no
  bulk batch is left to give;
- critical (audit, incidents, actions, approval requests, gap records, the DORA facts
  rollouts and recoveries, and Recall reports): never dropped.
"""

from __future__ import annotations

import io
import json
import math
import secrets
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from samantha.core.clock import Clock
from samantha.core.signing import sha256_hex
from samantha.core.transaction import transaction

Klass = Literal["critical", "important", "bulk"]
KIND_CLASS: dict[str, Klass] = {
    "audit": "critical", "incidents": "critical", "actions": "critical", "approval_requests": "critical",
    "gap": "critical",
    # DORA facts: a few a day, and a dropped one would bias the fleet's numbers, not just thin them
    "rollouts": "critical", "recoveries": "critical",
    "recalls": "critical",  # a Recall applied, blocked or refused: the hub's recall-status reads them
    "alerts": "important", "findings": "important", "proposed_gates": "important",
    "requests_1m": "bulk", "samples_1m": "bulk",
}
NEVER_DROP = tuple(k for k, c in KIND_CLASS.items() if c == "critical")
RESOLUTIONS = (60, 600, 3600)  # bulk downsampling ladder, seconds
SETTLE_S = 5.0
GAP_SCHEMA = pa.schema([("ts", pa.float64()), ("gap_kind", pa.string()), ("first_ts", pa.float64()),
                        ("last_ts", pa.float64()), ("dropped_records", pa.int64()), ("dropped_bytes", pa.int64()),
                        ("resolution_s", pa.float64()), ("reason", pa.string()), ("record_key", pa.string())])  # a minute is collected this long after it ends: late telemetry rows land first

DDL = [
    """CREATE TABLE IF NOT EXISTS outbox (
        seq BIGINT NOT NULL,             -- contiguous from 1 within the epoch
        batch_id VARCHAR NOT NULL,       -- <epoch>-<seq>: the hub stores each id once
        kind VARCHAR NOT NULL,
        klass VARCHAR NOT NULL,          -- critical | important | bulk
        created_at DOUBLE NOT NULL,
        window_start DOUBLE NOT NULL,    -- the batch_span window it absorbs records for
        first_ts DOUBLE NOT NULL,
        last_ts DOUBLE NOT NULL,
        records BIGINT NOT NULL,
        resolution_s DOUBLE,             -- bulk: bucket width of its rows
        payload BLOB,                    -- Parquet; NULL once acked, and for a gap until it is offered
        meta VARCHAR,                    -- a gap: what was dropped (JSON); rendered as Parquet when offered
        bytes BIGINT NOT NULL,
        sha256 VARCHAR NOT NULL,
        attempts INTEGER NOT NULL,       -- > 0: offered to the hub, frozen
        last_attempt_at DOUBLE,
        acked_at DOUBLE
    )""",
    "CREATE TABLE IF NOT EXISTS outbox_state (key VARCHAR NOT NULL, value VARCHAR NOT NULL)",
    """CREATE TABLE IF NOT EXISTS outbox_sent (   -- keys already queued, for sources re-read under a margin
        kind VARCHAR NOT NULL, record_key VARCHAR NOT NULL, order_val DOUBLE NOT NULL)""",
]


@dataclass(frozen=True)
class TableSource:
    """A daemon table tailed into the outbox (rows changed since the cursor)."""

    kind: str
    table: str
    order_col: str  # increases with every change: seq, or an updated timestamp
    ts_col: str  # wall time of the change
    key_sql: str  # a stable key per change
    margin: float = 0.0  # re-read this far below the cursor (rows stamped with the same instant)


# Mutable rows (updated in place) are keyed by content, so two changes in the same instant are two records.
TABLE_SOURCES: tuple[TableSource, ...] = (
    TableSource("audit", "audit", "seq", "ts", "'audit:' || seq"),
    TableSource("incidents", "incidents", "updated_ts", "updated_ts",
                "id || '@' || md5(CAST(incidents AS VARCHAR))", 60.0),
    TableSource("actions", "actions", "updated_ts", "updated_ts", "id || '@' || md5(CAST(actions AS VARCHAR))", 60.0),
    TableSource("alerts", "alerts", "updated_at", "updated_at",
                "'alert:' || id || '@' || md5(CAST(alerts AS VARCHAR))", 60.0),
)


def source(kind: str) -> TableSource:
    return next(s for s in TABLE_SOURCES if s.kind == kind)


_REQ_ROLLUP = """
WITH u AS (
  SELECT floor(ts / $b) * $b AS bucket, slot, bundle, shadow, count(*) AS count,
         count(*) FILTER (WHERE NOT ok) AS errors, sum(latency_ms) AS latency_sum,
         min(latency_ms) AS latency_min, max(latency_ms) AS latency_max,
         quantile_cont(latency_ms, 0.5) AS latency_p50, quantile_cont(latency_ms, 0.95) AS latency_p95,
         quantile_cont(latency_ms, 0.99) AS latency_p99, count(divergence) AS divergence_count,
         sum(divergence) AS divergence_sum, max(divergence) AS divergence_max
  FROM requests WHERE ts >= $lo AND ts < $hi GROUP BY ALL
  UNION ALL
  SELECT bucket, slot, bundle, shadow, count, errors, latency_sum, latency_min, latency_max, latency_p50,
         latency_p95, latency_p99, divergence_count, divergence_sum, divergence_max
  FROM requests_1m WHERE bucket >= $lo AND bucket < $hi
)
"""
# Re-aggregation at width $r: counts and sums add, min/max combine, p50 is count-weighted, p95/p99 take
# the max (an upper bound: downsampling never hides a tail).
_REQ_MERGE = """
SELECT floor(bucket / $r) * $r AS bucket, slot, bundle, shadow, sum(count)::BIGINT AS count,
       sum(errors)::BIGINT AS errors, sum(latency_sum) AS latency_sum, min(latency_min) AS latency_min,
       max(latency_max) AS latency_max, sum(latency_p50 * count) / sum(count) AS latency_p50,
       max(latency_p95) AS latency_p95, max(latency_p99) AS latency_p99,
       sum(divergence_count)::BIGINT AS divergence_count, sum(divergence_sum) AS divergence_sum,
       max(divergence_max) AS divergence_max, $r::DOUBLE AS resolution_s,
       'requests:' || (floor(bucket / $r) * $r)::BIGINT || ':' || slot || ':' || bundle || ':' || shadow
         || '/' || $r::BIGINT AS record_key
FROM {src} GROUP BY ALL ORDER BY 1
"""
_SAMPLES_ROLLUP = """
WITH a AS (
  SELECT floor(ts / $b) * $b AS bucket, series_id, count(*) AS count, sum(value) AS sum, min(value) AS min,
         max(value) AS max, quantile_cont(value, 0.5) AS p50, quantile_cont(value, 0.95) AS p95,
         quantile_cont(value, 0.99) AS p99
  FROM samples WHERE ts >= $lo AND ts < $hi GROUP BY ALL
  UNION ALL
  SELECT bucket, series_id, count, sum, min, max, p50, p95, p99 FROM samples_1m
  WHERE bucket >= $lo AND bucket < $hi
), u AS (
  SELECT a.bucket, s.metric, CAST(s.labels AS VARCHAR) AS labels, a.count, a.sum, a.min, a.max, a.p50, a.p95, a.p99
  FROM a JOIN series s ON s.id = a.series_id
)
"""
_SAMPLES_MERGE = """
SELECT floor(bucket / $r) * $r AS bucket, metric, labels, sum(count)::BIGINT AS count, sum(sum) AS sum,
       min(min) AS min, max(max) AS max, sum(p50 * count) / sum(count) AS p50, max(p95) AS p95, max(p99) AS p99,
       $r::DOUBLE AS resolution_s,
       'samples:' || (floor(bucket / $r) * $r)::BIGINT || ':' || metric || ':' || labels || '/' || $r::BIGINT
         AS record_key
FROM {src} GROUP BY ALL ORDER BY 1
"""
ROLLUPS = {"requests_1m": (_REQ_ROLLUP, _REQ_MERGE), "samples_1m": (_SAMPLES_ROLLUP, _SAMPLES_MERGE)}
_ROLLUP_TABLES = {"requests_1m": ("requests", "ts"), "samples_1m": ("samples", "ts")}


def to_parquet(tbl: pa.Table) -> bytes:
    """Plain Parquet types only (no Arrow schema blob), zstd. Tiny tables also skip compression, statistics
    and dictionaries, whose metadata costs more than their rows (a 1-row file: ~1 KB instead of ~3 KB)."""
    buf = io.BytesIO()
    tiny = tbl.num_rows < 20
    pq.write_table(tbl, buf, compression=None if tiny else "zstd", write_statistics=not tiny,
                   use_dictionary=not tiny, store_schema=False)
    return buf.getvalue()


def from_parquet(data: bytes) -> pa.Table:
    return pq.read_table(io.BytesIO(data))


def _plain(tbl: pa.Table) -> pa.Table:
    """Columns the hub can store as-is: extension/nested types become strings."""
    cols = []
    for col in tbl.columns:
        t = col.type
        ok = pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t) or pa.types.is_string(t)
        cols.append(col if ok else col.cast(pa.string()) if pa.types.is_large_string(t) else
                    pa.array([None if v is None else json.dumps(v, default=str) for v in col.to_pylist()],
                             type=pa.string()))
    return pa.Table.from_arrays(cols, names=tbl.column_names)


class Outbox:
    """Batches in tables `outbox`, `outbox_state`, `outbox_sent`, through a connection the daemon owns."""

    def __init__(self, conn: Any, clock: Clock, *, budget_bytes: int, batch_span_s: float = 3600.0,
                 batch_max_records: int = 50_000, bucket_s: int = 60) -> None:
        self.conn, self.clock = conn, clock
        self.budget_bytes = int(budget_bytes)
        self.batch_span_s = float(batch_span_s)
        self.batch_max_records = int(batch_max_records)
        self.bucket_s = int(bucket_s)
        self.lock = threading.RLock()
        self._state: dict[str, str] | None = None  # read-through cache: the outbox is the table's only writer
        self._tables: set[str] = set()
        for stmt in DDL:
            conn.execute(stmt)
        with self.lock, self._tx():
            if self._get("epoch") is None:
                self._set("epoch", secrets.token_hex(6))
                self._set("next_seq", "1")
        self.epoch: str = self._get("epoch")  # type: ignore[assignment]

    # ---------------- retention hook ----------------

    def protect(self, retention: Any) -> None:
        """Pending batches never age out; rollups not yet collected are kept until they are."""
        from samantha.telemetry.retention import RingMember

        retention.protect("outbox", "acked_at IS NULL")
        retention.register(RingMember("outbox", "created_at"))
        for kind in ROLLUPS:
            retention.protect(kind, f"bucket >= (SELECT coalesce(max(CAST(value AS DOUBLE)), 0) FROM outbox_state "
                                    f"WHERE key = 'cursor:{kind}')")

    # ---------------- state ----------------

    @contextmanager
    def _tx(self) -> Iterator[None]:
        try:
            with transaction(self.conn):
                yield
        except BaseException:
            self._state = None  # the cache may hold values that were rolled back
            raise

    def _get(self, key: str) -> str | None:
        if self._state is None:
            self._state = dict(self.conn.execute("SELECT key, value FROM outbox_state").fetchall())
        return self._state.get(key)

    def _set(self, key: str, value: Any) -> None:
        self._get(key)
        self.conn.execute("DELETE FROM outbox_state WHERE key = ?", [key])
        self.conn.execute("INSERT INTO outbox_state VALUES (?, ?)", [key, str(value)])
        self._state[key] = str(value)  # type: ignore[index]

    def _bump(self, key: str, by: float) -> None:
        self._set(key, float(self._get(key) or 0) + by)

    def get_state(self, key: str) -> str | None:
        with self.lock:
            return self._get(key)

    def set_state(self, **values: Any) -> None:
        with self.lock, self._tx():
            for k, v in values.items():
                self._set(k, v)

    # ---------------- appending ----------------

    def append(self, kind: str, tbl: pa.Table, ts_column: str, *, resolution_s: float | None = None) -> int:
        """Queue records (an Arrow table with a `record_key` column). Returns the number queued."""
        with self.lock, self._tx():
            return self._append(kind, tbl, ts_column, resolution_s)

    def append_records(self, kind: str, records: Sequence[dict[str, Any]], ts_field: str = "ts",
                       key_field: str = "id") -> int:
        """For producers outside the daemon's tables (chaos findings, proposed gates, approval requests):
        each record is a JSON-able dict with a wall-time `ts_field` and a unique `key_field`."""
        if kind not in KIND_CLASS or kind == "gap":
            raise ValueError(f"unknown outbox kind {kind!r}")
        rows = []
        for i, r in enumerate(records):
            ts, key = r.get(ts_field), r.get(key_field)
            if not isinstance(ts, int | float) or isinstance(ts, bool) or not math.isfinite(ts):
                raise ValueError(f"record {i}: field {ts_field!r} must be a finite number")
            if key is None:
                raise ValueError(f"record {i}: field {key_field!r} is required")
            rows.append({"ts": float(ts), "record_key": f"{kind}:{key}", "doc": json.dumps(r, sort_keys=True)})
        if not rows:
            return 0
        return self.append(kind, pa.Table.from_pylist(rows), "ts")

    def append_once(self, kind: str, tbl: pa.Table, ts_column: str) -> int:
        """Queue the rows whose `record_key` was never queued before (kept in `outbox_sent`, committed with
        the rows): for final facts re-derived from the daemon's records on every tick."""
        with self.lock:
            sent = {r[0] for r in self.conn.execute("SELECT record_key FROM outbox_sent WHERE kind = ?",
                                                    [kind]).fetchall()}
            keys = tbl.column("record_key").to_pylist()
            new = [i for i, k in enumerate(keys) if k not in sent]
            if not new:
                return 0
            part = tbl.take(pa.array(new))
            with self._tx():
                n = self._append(kind, part, ts_column, None)
                self.conn.executemany("INSERT INTO outbox_sent VALUES (?, ?, ?)",
                                      [[kind, keys[i], float(part.column(ts_column)[j].as_py())]
                                       for j, i in enumerate(new)])
            return n

    def _append(self, kind: str, tbl: pa.Table, ts_column: str, resolution_s: float | None) -> int:
        if tbl.num_rows == 0:
            return 0
        tbl = _plain(tbl)
        ts = tbl.column(ts_column).to_pylist()
        span = self.batch_span_s
        windows: dict[float, list[int]] = {}
        for i, t in enumerate(ts):
            windows.setdefault(math.floor(t / span) * span, []).append(i)
        for w, idx in sorted(windows.items()):
            part = tbl.take(pa.array(idx))
            open_ = self.conn.execute(
                "SELECT seq, payload, records FROM outbox WHERE kind = ? AND window_start = ? AND attempts = 0 "
                "AND acked_at IS NULL AND payload IS NOT NULL AND coalesce(resolution_s, 0) = coalesce(?, 0) "
                "ORDER BY seq DESC LIMIT 1", [kind, w, resolution_s]).fetchall()
            open_ = open_[0] if open_ else None
            if open_ is not None and open_[2] + part.num_rows <= self.batch_max_records:
                old = from_parquet(open_[1])
                merged = pa.concat_tables([old, part.cast(old.schema)]) if old.schema.names == part.schema.names \
                    else None
                if merged is not None:
                    self._rewrite(open_[0], kind, merged, ts_column, resolution_s)
                    continue
            self._new_batch(kind, part, ts_column, w, resolution_s)
        return tbl.num_rows

    def _new_batch(self, kind: str, tbl: pa.Table, ts_column: str, window: float, resolution_s: float | None) -> int:
        seq = int(self._get("next_seq") or 1)
        self._set("next_seq", seq + 1)
        data = to_parquet(tbl)
        ts = tbl.column(ts_column)
        self.conn.execute(
            "INSERT INTO outbox VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, 0, NULL, NULL)",
            [seq, f"{self.epoch}-{seq:010d}", kind, KIND_CLASS[kind], self.clock.time(), window,
             float(pc.min(ts).as_py()), float(pc.max(ts).as_py()), tbl.num_rows, resolution_s,
             data, len(data), sha256_hex(data)])
        return seq

    def _rewrite(self, seq: int, kind: str, tbl: pa.Table, ts_column: str, resolution_s: float | None) -> None:
        data = to_parquet(tbl)
        ts = tbl.column(ts_column)
        self.conn.execute("UPDATE outbox SET payload = ?, bytes = ?, sha256 = ?, records = ?, first_ts = ?, "
                          "last_ts = ?, resolution_s = ? WHERE seq = ?",
                          [data, len(data), sha256_hex(data), tbl.num_rows, float(pc.min(ts).as_py()),
                           float(pc.max(ts).as_py()), resolution_s, seq])

    # ---------------- collecting from the daemon's tables ----------------

    def _has_table(self, table: str) -> bool:
        if table not in self._tables:
            self._tables = {r[0] for r in self.conn.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        return table in self._tables

    def collect(self, now: float | None = None, sources: Sequence[TableSource] = TABLE_SOURCES) -> dict[str, int]:
        """Queue everything new in the daemon's tables and every complete rollup minute. Crash-safe: the
        records and the cursor that says they were taken commit together."""
        now = self.clock.time() if now is None else now
        out: dict[str, int] = {}
        with self.lock:
            for src in sources:
                if self._has_table(src.table):
                    out[src.kind] = self._collect_table(src)
            for kind in ROLLUPS:
                out[kind] = self._collect_rollup(kind, now)
        return {k: v for k, v in out.items() if v}

    def _collect_table(self, src: TableSource) -> int:
        ckey = f"cursor:{src.kind}"
        cur = self._get(ckey)
        if cur is None:
            where, params = "true", []
        elif src.margin:
            where, params = f"{src.order_col} >= ?", [float(cur) - src.margin]
        else:
            where, params = f"{src.order_col} > ?", [float(cur)]
        sql = (f"SELECT *, {src.key_sql} AS record_key FROM {src.table} WHERE {where} "
               f"AND {src.key_sql} NOT IN (SELECT record_key FROM outbox_sent WHERE kind = ?) "
               f"ORDER BY {src.order_col} LIMIT {self.batch_max_records}")
        tbl = self.conn.sql(sql, params=[*params, src.kind]).to_arrow_table()
        if tbl.num_rows == 0:
            return 0
        with self._tx():  # the records and the cursor that says they were taken commit together
            self._append(src.kind, tbl, src.ts_col, None)
            top = float(pc.max(tbl.column(src.order_col)).as_py())
            self._set(ckey, top)
            if src.margin:
                keys = tbl.column("record_key").to_pylist()
                order = tbl.column(src.order_col).to_pylist()
                self.conn.executemany("INSERT INTO outbox_sent VALUES (?, ?, ?)",
                                      [[src.kind, k, float(o)] for k, o in zip(keys, order, strict=True)])
                self.conn.execute("DELETE FROM outbox_sent WHERE kind = ? AND order_val < ?",
                                  [src.kind, top - src.margin])
        return tbl.num_rows

    def _collect_rollup(self, kind: str, now: float) -> int:
        b = self.bucket_s
        ckey = f"cursor:{kind}"
        raw, _ = _ROLLUP_TABLES[kind]
        cur = self._get(ckey)
        hi = math.floor((now - SETTLE_S) / b) * b
        if cur is None:
            first = self.conn.execute(f"SELECT least((SELECT min(ts) FROM {raw}), (SELECT min(bucket) FROM {kind}))"
                                      ).fetchall()[0][0]
            if first is None:
                return 0
            lo = math.floor(first / b) * b
        else:
            lo = float(cur)
        if hi <= lo:
            return 0
        gather, merge = ROLLUPS[kind]
        tbl = self.conn.sql(gather + merge.format(src="u"),
                            params={"b": float(b), "lo": lo, "hi": float(hi), "r": float(b)}).to_arrow_table()
        with self._tx():
            self._append(kind, tbl, "bucket", float(b))
            self._set(ckey, float(hi))
        return tbl.num_rows

    # ---------------- the disk budget ----------------

    def pending_bytes(self) -> int:
        with self.lock:
            return int(self.conn.execute("SELECT coalesce(sum(bytes), 0) FROM outbox WHERE acked_at IS NULL"
                                         ).fetchall()[0][0])

    def enforce_budget(self, max_steps: int = 10_000) -> dict[str, Any]:
        """Bring pending bytes under the budget: downsample bulk, then gap bulk, then gap important."""
        done = {"downsampled": 0, "gapped": 0, "over_budget": False}
        with self.lock:
            for _ in range(max_steps):
                if self.pending_bytes() <= self.budget_bytes:
                    return done
                if self._downsample_one():
                    done["downsampled"] += 1
                elif self._gap_one("bulk") or self._gap_one("important"):
                    done["gapped"] += 1
                else:
                    done["over_budget"] = True  # only never-drop records left: they stay
                    return done
        done["over_budget"] = self.pending_bytes() > self.budget_bytes
        return done

    def _mutable(self, klass: str, extra: str = "") -> str:
        return (f"SELECT seq, kind, payload, resolution_s, records, bytes, first_ts, last_ts FROM outbox "
                f"WHERE klass = '{klass}' AND kind <> 'gap' AND attempts = 0 AND acked_at IS NULL "
                f"AND payload IS NOT NULL {extra}")

    def _downsample_one(self) -> bool:
        for finer, coarser in zip(RESOLUTIONS, RESOLUTIONS[1:], strict=False):
            rows = self.conn.execute(self._mutable("bulk", f"AND resolution_s = {finer} ORDER BY seq LIMIT 1")
                                     ).fetchall()
            if not rows:
                continue
            seq, kind, payload = rows[0][0], rows[0][1], rows[0][2]
            self.conn.register("_ob_src", from_parquet(payload))
            try:
                tbl = self.conn.sql(ROLLUPS[kind][1].format(src="_ob_src"), params={"r": float(coarser)}
                                    ).to_arrow_table()
            finally:
                self.conn.unregister("_ob_src")
            with self._tx():
                self._rewrite(seq, kind, _plain(tbl), "bucket", float(coarser))
                self._bump("stat:downsampled", 1)
            return True
        return False

    def _gap_one(self, klass: str) -> bool:
        rows = self.conn.execute(self._mutable(klass, "ORDER BY seq LIMIT 1")).fetchall()
        if not rows:
            return False
        seq, kind, _, res, records, nbytes, first, last = rows[0]
        meta = json.dumps({"ts": float(first), "gap_kind": kind, "first_ts": float(first), "last_ts": float(last),
                           "dropped_records": int(records), "dropped_bytes": int(nbytes), "resolution_s": res,
                           "reason": "outbox over its disk budget while offline",
                           "record_key": f"gap:{self.epoch}:{seq}"})
        with self._tx():  # the batch keeps its seq and id (the watermark stays contiguous); its rows go
            self.conn.execute("UPDATE outbox SET kind = 'gap', klass = 'critical', payload = NULL, meta = ?, "
                              "bytes = ?, sha256 = '', records = 1, resolution_s = NULL WHERE seq = ?",
                              [meta, len(meta), seq])
            self._bump("stat:gaps", 1)
            self._bump(f"stat:dropped_records:{kind}", int(records))
        return True

    # ---------------- the uploader's side ----------------

    def pending(self, limit: int = 100) -> list[dict[str, Any]]:
        cols = ("seq", "batch_id", "kind", "klass", "first_ts", "last_ts", "records", "bytes", "sha256", "attempts")
        with self.lock:
            rows = self.conn.execute(f"SELECT {', '.join(cols)} FROM outbox WHERE acked_at IS NULL ORDER BY seq "
                                     f"LIMIT {int(limit)}").fetchall()
        return [dict(zip(cols, r, strict=True)) for r in rows]

    def offer(self, seq: int) -> bytes:
        """Freeze the batch (attempts + 1, committed) and return its payload, before it goes on the wire.
        A gap record is rendered here, once: later offers return the same bytes."""
        with self.lock, self._tx():
            self.conn.execute("UPDATE outbox SET attempts = attempts + 1, last_attempt_at = ? WHERE seq = ?",
                              [self.clock.time(), seq])
            rows = self.conn.execute("SELECT payload, meta FROM outbox WHERE seq = ? AND acked_at IS NULL",
                                     [seq]).fetchall()
            if rows and rows[0][0] is None and rows[0][1]:
                data = to_parquet(pa.Table.from_pylist([json.loads(rows[0][1])], schema=GAP_SCHEMA))
                self.conn.execute("UPDATE outbox SET payload = ?, bytes = ?, sha256 = ? WHERE seq = ?",
                                  [data, len(data), sha256_hex(data), seq])
                return data
        row = rows[0] if rows else None
        if row is None or row[0] is None:
            raise KeyError(f"batch {seq} has no payload")
        return bytes(row[0])

    def ack(self, upto_seq: int | None = None, seqs: Sequence[int] = ()) -> int:
        """Mark batches stored at the hub: every seq <= the hub's watermark, plus `seqs`. Frees payloads."""
        now = self.clock.time()
        with self.lock, self._tx():
            n = 0
            if upto_seq:
                n += self.conn.execute("UPDATE outbox SET acked_at = ?, payload = NULL WHERE acked_at IS NULL "
                                       "AND seq <= ?", [now, int(upto_seq)]).fetchall()[0][0]
            for s in seqs:
                n += self.conn.execute("UPDATE outbox SET acked_at = ?, payload = NULL WHERE acked_at IS NULL "
                                       "AND seq = ?", [now, int(s)]).fetchall()[0][0]
            return int(n)

    # ---------------- reporting ----------------

    def stats(self) -> dict[str, Any]:
        with self.lock:
            rows = self.conn.execute(
                "SELECT kind, count(*), coalesce(sum(records), 0), coalesce(sum(bytes), 0), min(first_ts) "
                "FROM outbox WHERE acked_at IS NULL GROUP BY kind ORDER BY kind").fetchall()
            tot = self.conn.execute("SELECT count(*), coalesce(max(seq), 0), "
                                    "coalesce(max(seq) FILTER (WHERE acked_at IS NOT NULL), 0) FROM outbox"
                                    ).fetchall()[0]
            stats = dict(self.conn.execute("SELECT key, value FROM outbox_state WHERE key LIKE 'stat:%'").fetchall())
        pending = {k: {"batches": n, "records": int(r), "bytes": int(b), "oldest_ts": o} for k, n, r, b, o in rows}
        dropped = {k.split(":", 2)[2]: int(float(v)) for k, v in stats.items() if k.startswith("stat:dropped_records:")}
        return {
            "epoch": self.epoch,
            "pending_batches": sum(p["batches"] for p in pending.values()),
            "pending_records": sum(p["records"] for p in pending.values()),
            "pending_bytes": sum(p["bytes"] for p in pending.values()),
            "budget_bytes": self.budget_bytes,
            "pending_by_kind": pending,
            "last_seq": int(tot[1]),
            "acked_seq": int(tot[2]),
            "downsampled_batches": int(float(stats.get("stat:downsampled", 0))),
            "gap_records": int(float(stats.get("stat:gaps", 0))),
            "dropped_records": dropped,
        }
