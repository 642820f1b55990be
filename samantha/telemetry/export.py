"""Export recorded telemetry as Parquet (one file per table) for offline analysis and backtests."""

from __future__ import annotations

from pathlib import Path

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
