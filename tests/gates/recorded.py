"""Build real DuckDB recordings in the telemetry store's schema for gate tests."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

SCHEMA = """
CREATE TABLE IF NOT EXISTS requests(ts DOUBLE, slot VARCHAR, bundle VARCHAR, latency_ms DOUBLE, ok BOOLEAN,
                                    divergence DOUBLE, shadow BOOLEAN);
CREATE TABLE IF NOT EXISTS series(id BIGINT, metric VARCHAR, labels_key VARCHAR, labels JSON);
CREATE TABLE IF NOT EXISTS samples(ts DOUBLE, series_id BIGINT, value DOUBLE);
CREATE TABLE IF NOT EXISTS events(ts DOUBLE, kind VARCHAR, source VARCHAR, severity VARCHAR, attrs JSON);
"""


def traffic(rng: np.random.Generator, t0: float, seconds: float, rps: float, slot: str, bundle: str, *,
            error_rate: float = 0.01, median_ms: float = 20.0, sigma: float = 0.3, shadow: bool = False,
            divergence_rate: float | None = None) -> pa.Table:
    n = rng.poisson(rps * seconds)
    ts = np.sort(t0 + rng.uniform(0, seconds, n))
    lat = median_ms * np.exp(sigma * rng.standard_normal(n))
    ok = rng.uniform(size=n) >= error_rate
    if divergence_rate is None:
        div = pa.nulls(n, pa.float64())
    else:
        div = pa.array(np.where(rng.uniform(size=n) < divergence_rate, 0.2, 0.0))
    return pa.table({"ts": ts, "slot": [slot] * n, "bundle": [bundle] * n, "latency_ms": lat, "ok": ok,
                     "divergence": div, "shadow": np.full(n, shadow)})


class RecordingWriter:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.con = duckdb.connect(str(path))
        self.con.execute(SCHEMA)
        self._series: dict[tuple[str, str], int] = {}

    def requests(self, table: pa.Table) -> None:
        self.con.register("_r", table)
        self.con.execute("INSERT INTO requests SELECT ts, slot, bundle, latency_ms, ok, divergence, shadow FROM _r")
        self.con.unregister("_r")

    def samples(self, metric: str, ts: np.ndarray, values: np.ndarray, labels: dict[str, str] | None = None) -> None:
        labels = labels or {}
        key = (metric, json.dumps(labels, sort_keys=True))
        if key not in self._series:
            sid = len(self._series) + 1
            self._series[key] = sid
            self.con.execute("INSERT INTO series VALUES (?, ?, ?, ?)", [sid, metric, key[1], key[1]])
        sid = self._series[key]
        tbl = pa.table({"ts": np.asarray(ts, dtype=float), "series_id": np.full(len(ts), sid),
                        "value": np.asarray(values, dtype=float)})
        self.con.register("_s", tbl)
        self.con.execute("INSERT INTO samples SELECT ts, series_id, value FROM _s")
        self.con.unregister("_s")

    def event(self, ts: float, kind: str, **attrs: object) -> None:
        self.con.execute("INSERT INTO events VALUES (?, ?, 'test', 'info', ?)", [ts, kind, json.dumps(attrs)])

    def close(self) -> None:
        self.con.close()
