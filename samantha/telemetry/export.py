"""Export recorded telemetry as Parquet for offline analysis and backtests.

- `export_parquet`: every telemetry table to `<table>.parquet` (the CLI, with the store to itself);
- `window_parquet`: one table's rows in a time window as Parquet bytes, through a read-only
  `read(sql, params) -> Arrow` (the daemon's `GET /v1/export/{table}` while it runs).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from samantha.telemetry.schema import ALL_TABLES
from samantha.telemetry.store import TelemetryStore


def export_parquet(store: TelemetryStore, out_dir: str | Path) -> dict[str, dict[str, object]]:
    """Write `<table>.parquet` for every table; returns {table: {path, rows}}."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    store.flush()
    written: dict[str, dict[str, object]] = {}
    for table in ALL_TABLES:
        path = (out / f"{table}.parquet").resolve()
        order = " ORDER BY id" if table == "series" else (" ORDER BY bucket" if table.endswith("_1m") else " ORDER BY ts")
        quoted = str(path).replace("'", "''")
        store.write_sql(f"COPY (SELECT * FROM {table}{order}) TO '{quoted}' (FORMAT parquet)")
        rows = store.query_scalar(f"SELECT count(*) FROM {table}")
        written[table] = {"path": str(path), "rows": int(rows or 0)}
    return written


class ExportTooLarge(ValueError):
    def __init__(self, rows: int, max_rows: int) -> None:
        self.rows, self.max_rows = rows, max_rows
        super().__init__(f"{rows} rows in the window, more than {max_rows}: narrow since/until")


def window_parquet(read: Callable[[str, Any], Any], table: str, ts_column: str, since: float, until: float,
                   *, max_rows: int = 2_000_000) -> tuple[bytes, int]:
    """One table's rows with `since <= ts_column < until`, ordered by it, as Parquet bytes (zstd); and the count.

    `table` and `ts_column` are interpolated into SQL: callers pass names from their own allow-list, never
    user text. Raises ExportTooLarge past `max_rows` (the window is read into memory)."""
    where = f"{ts_column} >= ? AND {ts_column} < ?"
    rows = int(read(f"SELECT count(*) FROM {table} WHERE {where}", [since, until]).column(0)[0].as_py() or 0)
    if rows > max_rows:
        raise ExportTooLarge(rows, max_rows)
    arrow = read(f"SELECT * FROM {table} WHERE {where} ORDER BY {ts_column}", [since, until])
    buf = io.BytesIO()
    pq.write_table(arrow, buf, compression="zstd")
    return buf.getvalue(), rows
