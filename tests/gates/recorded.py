"""Telemetry for gate tests, written through the real TelemetryStore into a real DuckDB file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from samantha.core.clock import SimClock
from samantha.core.config import StoreConfig
from samantha.harness.traffic_model import TWIN_RECORDING  # noqa: E402  (recorded twin telemetry, Parquet)
from samantha.telemetry.store import SampleBatch, TelemetryStore


def open_store(path: Path, clock: SimClock) -> TelemetryStore:
    return TelemetryStore(path, StoreConfig(max_past_age_s=30 * 86400), clock)


def add_traffic(store: TelemetryStore, rng: np.random.Generator, t0: float, seconds: float, rps: float, slot: str,
                bundle: str, *, error_rate: float = 0.01, median_ms: float = 20.0, sigma: float = 0.3,
                shadow: bool = False, divergence_rate: float | None = None, latency_factor: float = 1.0) -> int:
    n = int(rng.poisson(rps * seconds))
    ts = np.sort(t0 + rng.uniform(0, seconds, n))
    lat = latency_factor * median_ms * np.exp(sigma * rng.standard_normal(n))
    ok = rng.uniform(size=n) >= error_rate
    div = None if divergence_rate is None else np.where(rng.uniform(size=n) < divergence_rate, 0.2, 0.0)
    res = store.ingest_request_columns(ts, slot, bundle, lat, ok, div, shadow)
    assert not res.rejected, res.rejected[:3]
    return n


def add_metric(store: TelemetryStore, metric: str, ts: np.ndarray, values: np.ndarray,
               labels: dict[str, str] | None = None) -> None:
    store.ingest_samples(SampleBatch(metric, labels or {}, np.asarray(ts, float), np.asarray(values, float)))


def load_twin_recording(path: Path) -> tuple[float, float]:
    """The recorded twin run, ingested into a fresh real store file at `path`. Returns (start, end)."""
    req = pq.read_table(TWIN_RECORDING / "requests.parquet")
    ts = req.column("ts").to_numpy()
    clock = SimClock(float(ts.max()) + 1)
    with open_store(path, clock) as store:
        div = req.column("divergence").to_numpy(zero_copy_only=False).astype(float)
        res = store.ingest_request_columns(ts, req.column("slot"), req.column("bundle"),
                                           req.column("latency_ms").to_numpy(),
                                           req.column("ok").to_numpy(zero_copy_only=False).astype(bool), div,
                                           req.column("shadow").to_numpy(zero_copy_only=False).astype(bool))
        assert not res.rejected, res.rejected[:3]
        store.flush()
    return float(ts.min()), float(ts.max())
