"""Window queries over the telemetry store: what gates read.

Every function takes a `source` with `read_arrow(sql, params) -> pyarrow.Table` (a
TelemetryStore) and a window of `window_s` seconds ending at `now` (default
`clock.time()`; pass `now=` to query the past from a simulated-clock backtest). The window
is the half-open interval (now - window_s, now].

Requests (table `requests`):
    request_window(source, window_s, *, slot=None, bundle=None, shadow=None, now=None, clock=REAL_CLOCK,
                   quantiles=(0.5, 0.95, 0.99))
        -> RequestWindow(count, rate_per_s, errors, error_ratio, latency_mean_ms,
                         latency_p50_ms, latency_p95_ms, latency_p99_ms,
                         divergence_count, divergence_mean, divergence_max, window_s, now,
                         latency_quantiles={q: ms})         # p50/p95/p99 None unless requested
    request_window_by(source, window_s, by=("slot",), *, slot=None, bundle=None, shadow=None, now=None, clock=...,
                      quantiles=(0.5, 0.95, 0.99))
        -> dict[tuple[str | bool, ...], RequestWindow]       # by any of "slot", "bundle", "shadow"
    Asking only for the quantiles a gate needs keeps the query cheap (each one is a selection).
    request_arrays(source, window_s, *, slot=None, bundle=None, shadow=None, now=None, clock=...)
        -> RequestArrays(ts, latency_ms, ok, divergence)      # numpy; divergence NaN = not compared

Generic metrics (tables `samples` + `series`); `labels` is a subset match on the label set:
    metric_window(source, metric, window_s, *, labels=None, now=None, clock=...)
        -> MetricWindow(count, rate_per_s, mean, min, max, p50, p95, p99, last, window_s, now)
    metric_window_by(source, metric, label, window_s, *, labels=None, now=None, clock=...)
        -> dict[str, MetricWindow]                            # grouped by one label's value
    metric_arrays(source, metric, window_s, *, labels=None, now=None, clock=...)
        -> MetricArrays(ts, value, series_id)                 # numpy, ordered by ts

Empty windows give count 0 and None for every statistic (never NaN, never an exception).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from samantha.core.clock import REAL_CLOCK, Clock
from samantha.telemetry.schema import JUDGED_SQL

_BY_COLUMNS = ("slot", "bundle", "shadow")


class ArrowSource(Protocol):
    def read_arrow(self, sql: str, params: Any = None) -> pa.Table: ...


@dataclass(frozen=True)
class RequestWindow:
    count: int
    rate_per_s: float
    errors: int
    error_ratio: float | None
    latency_mean_ms: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None
    divergence_count: int
    divergence_mean: float | None
    divergence_max: float | None
    window_s: float
    now: float
    latency_quantiles: dict[float, float | None] = field(default_factory=dict)


@dataclass(frozen=True)
class RequestArrays:
    ts: np.ndarray
    latency_ms: np.ndarray
    ok: np.ndarray
    divergence: np.ndarray


@dataclass(frozen=True)
class MetricWindow:
    count: int
    rate_per_s: float
    mean: float | None
    min: float | None
    max: float | None
    p50: float | None
    p95: float | None
    p99: float | None
    last: float | None
    window_s: float
    now: float


@dataclass(frozen=True)
class MetricArrays:
    ts: np.ndarray
    value: np.ndarray
    series_id: np.ndarray


def _now(now: float | None, clock: Clock) -> float:
    return clock.time() if now is None else float(now)


def _request_filter(window_s: float, now: float, slot: str | None, bundle: str | None,
                    shadow: bool | None) -> tuple[str, list[Any]]:
    where = ["ts > ?", "ts <= ?", JUDGED_SQL]  # only trusted writers' rows judge slot health
    params: list[Any] = [now - window_s, now]
    for col, v in (("slot", slot), ("bundle", bundle), ("shadow", shadow)):
        if v is not None:
            where.append(f"{col} = ?")
            params.append(v)
    return " AND ".join(where), params


DEFAULT_QUANTILES = (0.5, 0.95, 0.99)


def _request_agg(quantiles: Sequence[float]) -> str:
    qs = [float(x) for x in quantiles]
    if any(not 0.0 <= x <= 1.0 for x in qs):
        raise ValueError(f"quantiles must lie in [0, 1], got {qs}")
    qsql = f"quantile_cont(latency_ms, {qs!r})" if qs else "NULL::DOUBLE[]"
    return f"""count(*) AS n, count(*) FILTER (WHERE NOT ok) AS errors, avg(latency_ms) AS mean, {qsql} AS q,
    count(divergence) AS dn, avg(divergence) AS dmean, max(divergence) AS dmax"""


def _request_row(r: dict[str, Any], window_s: float, now: float, quantiles: Sequence[float]) -> RequestWindow:
    n = int(r["n"] or 0)
    qmap = dict(zip((float(x) for x in quantiles), r["q"] or [None] * len(quantiles), strict=True))
    return RequestWindow(
        count=n, rate_per_s=n / window_s if window_s > 0 else 0.0, errors=int(r["errors"] or 0),
        error_ratio=(int(r["errors"] or 0) / n) if n else None, latency_mean_ms=r["mean"],
        latency_p50_ms=qmap.get(0.5), latency_p95_ms=qmap.get(0.95), latency_p99_ms=qmap.get(0.99),
        divergence_count=int(r["dn"] or 0), divergence_mean=r["dmean"], divergence_max=r["dmax"],
        window_s=window_s, now=now, latency_quantiles=qmap)


def request_window(source: ArrowSource, window_s: float, *, slot: str | None = None, bundle: str | None = None,
                   shadow: bool | None = None, now: float | None = None, clock: Clock = REAL_CLOCK,
                   quantiles: Sequence[float] = DEFAULT_QUANTILES) -> RequestWindow:
    now = _now(now, clock)
    where, params = _request_filter(window_s, now, slot, bundle, shadow)
    t = source.read_arrow(f"SELECT {_request_agg(quantiles)} FROM requests WHERE {where}", params)
    return _request_row(t.to_pylist()[0], window_s, now, quantiles)


def request_window_by(source: ArrowSource, window_s: float, by: Sequence[str] = ("slot",), *,
                      slot: str | None = None, bundle: str | None = None, shadow: bool | None = None,
                      now: float | None = None, clock: Clock = REAL_CLOCK,
                      quantiles: Sequence[float] = DEFAULT_QUANTILES) -> dict[tuple[Any, ...], RequestWindow]:
    if isinstance(by, str):
        by = (by,)
    bad = [b for b in by if b not in _BY_COLUMNS]
    if bad or not by:
        raise ValueError(f"group by one or more of {_BY_COLUMNS}, got {list(by)}")
    now = _now(now, clock)
    where, params = _request_filter(window_s, now, slot, bundle, shadow)
    cols = ", ".join(by)
    t = source.read_arrow(f"SELECT {cols}, {_request_agg(quantiles)} FROM requests WHERE {where} GROUP BY {cols}",
                          params)
    return {tuple(r[c] for c in by): _request_row(r, window_s, now, quantiles) for r in t.to_pylist()}


def request_arrays(source: ArrowSource, window_s: float, *, slot: str | None = None, bundle: str | None = None,
                   shadow: bool | None = None, now: float | None = None, clock: Clock = REAL_CLOCK) -> RequestArrays:
    now = _now(now, clock)
    where, params = _request_filter(window_s, now, slot, bundle, shadow)
    t = source.read_arrow(f"SELECT ts, latency_ms, ok, divergence FROM requests WHERE {where} ORDER BY ts", params)
    return RequestArrays(
        ts=_np(t, "ts"), latency_ms=_np(t, "latency_ms"),
        ok=t.column("ok").to_numpy(zero_copy_only=False).astype(bool),
        divergence=_np(t, "divergence"))


def _np(t: pa.Table, col: str) -> np.ndarray:
    c = t.column(col)
    return c.to_numpy().astype(np.float64) if c.null_count == 0 else \
        c.fill_null(float("nan")).to_numpy().astype(np.float64)


def _metric_filter(metric: str, window_s: float, now: float,
                   labels: Mapping[str, str] | None) -> tuple[str, list[Any]]:
    where = ["s.ts > ?", "s.ts <= ?", "r.metric = ?"]
    params: list[Any] = [now - window_s, now, metric]
    for k, v in (labels or {}).items():
        where.append("json_extract_string(r.labels, ?) = ?")
        params += [_json_path(k), v]
    return " AND ".join(where), params


def _json_path(key: str) -> str:
    return '$."' + key.replace('"', '\\"') + '"'


_METRIC_AGG = """count(*) AS n, avg(s.value) AS mean, min(s.value) AS mn, max(s.value) AS mx,
    quantile_cont(s.value, [0.5, 0.95, 0.99]) AS q, arg_max(s.value, s.ts) AS last"""


def _metric_row(r: dict[str, Any], window_s: float, now: float) -> MetricWindow:
    n = int(r["n"] or 0)
    q = r["q"] or [None, None, None]
    return MetricWindow(count=n, rate_per_s=n / window_s if window_s > 0 else 0.0, mean=r["mean"], min=r["mn"],
                        max=r["mx"], p50=q[0], p95=q[1], p99=q[2], last=r["last"], window_s=window_s, now=now)


def metric_window(source: ArrowSource, metric: str, window_s: float, *, labels: Mapping[str, str] | None = None,
                  now: float | None = None, clock: Clock = REAL_CLOCK) -> MetricWindow:
    now = _now(now, clock)
    where, params = _metric_filter(metric, window_s, now, labels)
    t = source.read_arrow(f"SELECT {_METRIC_AGG} FROM samples s JOIN series r ON s.series_id = r.id WHERE {where}",
                          params)
    return _metric_row(t.to_pylist()[0], window_s, now)


def metric_window_by(source: ArrowSource, metric: str, label: str, window_s: float, *,
                     labels: Mapping[str, str] | None = None, now: float | None = None,
                     clock: Clock = REAL_CLOCK) -> dict[str, MetricWindow]:
    now = _now(now, clock)
    where, params = _metric_filter(metric, window_s, now, labels)
    t = source.read_arrow(
        f"SELECT json_extract_string(r.labels, ?) AS k, {_METRIC_AGG} FROM samples s JOIN series r "
        f"ON s.series_id = r.id WHERE {where} GROUP BY k", [_json_path(label), *params])
    return {r["k"]: _metric_row(r, window_s, now) for r in t.to_pylist() if r["k"] is not None}


def metric_arrays(source: ArrowSource, metric: str, window_s: float, *, labels: Mapping[str, str] | None = None,
                  now: float | None = None, clock: Clock = REAL_CLOCK) -> MetricArrays:
    now = _now(now, clock)
    where, params = _metric_filter(metric, window_s, now, labels)
    t = source.read_arrow(f"SELECT s.ts, s.value, s.series_id FROM samples s JOIN series r ON s.series_id = r.id "
                          f"WHERE {where} ORDER BY s.ts", params)
    return MetricArrays(ts=_np(t, "ts"), value=_np(t, "value"),
                        series_id=t.column("series_id").to_numpy().astype(np.int64))
