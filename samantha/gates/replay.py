"""Read-only access to recorded telemetry: a DuckDB file, or a directory of Parquet exported from one.

Backtests read recordings through this, never through the daemon's live store.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

TABLES = ("requests", "series", "samples", "events")


class RecordingError(ValueError):
    pass


class Recording:
    """A TelemetryReader over a recording. Thread-safe (one cursor per call under a lock)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._con = duckdb.connect(":memory:")  # views over the recording; nothing is ever written to it
        found: list[str] = []
        if self.path.is_dir():
            for t in TABLES:
                files = sorted(self.path.glob(f"{t}.parquet")) or sorted((self.path / t).glob("*.parquet"))
                if files:
                    lst = ", ".join("'" + f.as_posix().replace("'", "''") + "'" for f in files)
                    self._view(t, f"read_parquet([{lst}])")
                    found.append(t)
        elif self.path.is_file():
            quoted = self.path.as_posix().replace("'", "''")
            try:
                self._con.execute(f"ATTACH '{quoted}' AS rec (READ_ONLY)")
            except duckdb.Error as e:
                self._con.close()
                raise RecordingError(f"{self.path}: not a readable DuckDB file: {e}") from None
            names = {r[0] for r in self._con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_catalog = 'rec'").fetchall()}
            for t in TABLES:
                if t in names:
                    self._view(t, f"rec.{t}")
                    found.append(t)
        else:
            raise RecordingError(f"{self.path}: no such file or directory")
        self.tables = tuple(found)
        if "requests" not in found and "samples" not in found:
            self._con.close()
            raise RecordingError(f"{self.path}: holds neither a requests nor a samples table")
        self._empty_views()

    def _view(self, table: str, source: str) -> None:
        """Recordings from before writer identity: their rows were the daemon's and the router's (`local`)."""
        cols = {r[0] for r in self._con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
        extra = ", 'local' AS writer" if table in ("requests", "events") and "writer" not in cols else ""
        self._con.execute(f"CREATE VIEW {table} AS SELECT *{extra} FROM {source}")

    def _empty_views(self) -> None:
        """Missing tables read as empty, so a recording without host metrics still replays."""
        ddl = {"requests": "ts DOUBLE, slot VARCHAR, bundle VARCHAR, latency_ms DOUBLE, ok BOOLEAN, "
                           "divergence DOUBLE, shadow BOOLEAN, writer VARCHAR",
               "series": "id BIGINT, metric VARCHAR, labels_key VARCHAR, labels VARCHAR",
               "samples": "ts DOUBLE, series_id BIGINT, value DOUBLE",
               "events": "ts DOUBLE, kind VARCHAR, source VARCHAR, severity VARCHAR, attrs VARCHAR, writer VARCHAR"}
        for t, cols in ddl.items():
            if t not in self.tables:
                names = ", ".join(f"NULL::{c.split()[1]} AS {c.split()[0]}" for c in cols.split(", "))
                self._con.execute(f"CREATE VIEW {t} AS SELECT {names} WHERE false")

    def read_arrow(self, sql: str, params: list[Any] | None = None) -> pa.Table:
        with self._lock:
            cur = self._con.cursor()
            try:
                return cur.sql(sql, params=params or None).to_arrow_table()
            finally:
                cur.close()

    def time_range(self) -> tuple[float, float] | None:
        row = self.read_arrow("SELECT min(ts) AS a, max(ts) AS b FROM (SELECT ts FROM requests UNION ALL "
                              "SELECT ts FROM samples)").to_pylist()[0]
        return None if row["a"] is None else (float(row["a"]), float(row["b"]))

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> Recording:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
