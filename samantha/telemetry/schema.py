"""DuckDB DDL for the telemetry store. Timestamps are DOUBLE epoch seconds everywhere.

No indexes or keys on the raw tables: rows arrive roughly in time order, so DuckDB's
per-row-group min/max (zonemaps) already prune time-window scans, and an index would
slow every insert.
"""

from __future__ import annotations

import pyarrow as pa

SAMPLES = pa.schema([("ts", pa.float64()), ("series_id", pa.int64()), ("value", pa.float64())])
REQUESTS = pa.schema([
    ("ts", pa.float64()), ("slot", pa.string()), ("bundle", pa.string()), ("latency_ms", pa.float64()),
    ("ok", pa.bool_()), ("divergence", pa.float64()), ("shadow", pa.bool_()), ("writer", pa.string()),
])
EVENTS = pa.schema([
    ("ts", pa.float64()), ("kind", pa.string()), ("source", pa.string()), ("severity", pa.string()),
    ("attrs", pa.string()),  # JSON text; DuckDB casts it into the JSON column on insert
    ("writer", pa.string()),
])

# Who wrote a row (`writer` on requests and events): `local` for the daemon's own code and in-process
# callers, a configured writer's name for HTTP ingest (api.writers), `anonymous` under the loopback opt-out.
LOCAL_WRITER = "local"
ANONYMOUS_WRITER = "anonymous"
ROUTER_WRITER = "router"
# Request rows that judge slot health: the router's (and in-process ones). Anything else is kept, not judged.
JUDGED_WRITERS = (LOCAL_WRITER, ROUTER_WRITER, ANONYMOUS_WRITER)
JUDGED_SQL = "writer IN (" + ", ".join(f"'{w}'" for w in JUDGED_WRITERS) + ")"
SERIES = pa.schema([("id", pa.int64()), ("metric", pa.string()), ("labels_key", pa.string()),
                    ("labels", pa.string())])

# Arrow schema of each table the write buffer feeds.
ARROW_SCHEMAS: dict[str, pa.Schema] = {"samples": SAMPLES, "requests": REQUESTS, "events": EVENTS,
                                       "series": SERIES}

DDL: list[str] = [
    "LOAD json",
    """CREATE TABLE IF NOT EXISTS series (
        id BIGINT NOT NULL,
        metric VARCHAR NOT NULL,
        labels_key VARCHAR NOT NULL,  -- canonical: sorted k=v joined by ',' ('\\', ',' and '=' escaped in values)
        labels JSON NOT NULL
    )""",
    "CREATE TABLE IF NOT EXISTS samples (ts DOUBLE NOT NULL, series_id BIGINT NOT NULL, value DOUBLE NOT NULL)",
    """CREATE TABLE IF NOT EXISTS requests (
        ts DOUBLE NOT NULL,
        slot VARCHAR NOT NULL,
        bundle VARCHAR NOT NULL,
        latency_ms DOUBLE NOT NULL,
        ok BOOLEAN NOT NULL,
        divergence DOUBLE,  -- NULL when the output was not compared
        shadow BOOLEAN NOT NULL,
        writer VARCHAR NOT NULL DEFAULT 'local'  -- who pushed it (JUDGED_WRITERS judge slot health)
    )""",
    """CREATE TABLE IF NOT EXISTS events (
        ts DOUBLE NOT NULL, kind VARCHAR NOT NULL, source VARCHAR NOT NULL, severity VARCHAR NOT NULL, attrs JSON,
        writer VARCHAR NOT NULL DEFAULT 'local'
    )""",
    # files from before writer identity: their rows were the daemon's and the router's
    "ALTER TABLE requests ADD COLUMN IF NOT EXISTS writer VARCHAR DEFAULT 'local'",
    "ALTER TABLE events ADD COLUMN IF NOT EXISTS writer VARCHAR DEFAULT 'local'",
    """CREATE TABLE IF NOT EXISTS samples_1m (
        bucket DOUBLE NOT NULL, series_id BIGINT NOT NULL,
        count BIGINT NOT NULL, sum DOUBLE, min DOUBLE, max DOUBLE, p50 DOUBLE, p95 DOUBLE, p99 DOUBLE
    )""",
    """CREATE TABLE IF NOT EXISTS requests_1m (
        bucket DOUBLE NOT NULL, slot VARCHAR NOT NULL, bundle VARCHAR NOT NULL, shadow BOOLEAN NOT NULL,
        count BIGINT NOT NULL, errors BIGINT NOT NULL,
        latency_sum DOUBLE, latency_min DOUBLE, latency_max DOUBLE,
        latency_p50 DOUBLE, latency_p95 DOUBLE, latency_p99 DOUBLE,
        divergence_count BIGINT NOT NULL, divergence_sum DOUBLE, divergence_max DOUBLE
    )""",
]

RAW_TABLES = ("samples", "requests", "events")
ROLLUP_TABLES = ("samples_1m", "requests_1m")
ALL_TABLES = ("series", *RAW_TABLES, *ROLLUP_TABLES)


def create_schema(con) -> None:
    for stmt in DDL:
        con.execute(stmt)
