"""Window data for gate evaluation, fetched from the store once per evaluation pass.

The engine asks for the widest span any gate needs, then every gate slices its own
window out of the same arrays (binary search on sorted timestamps).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pyarrow as pa


class TelemetryReader(Protocol):
    """What gates need from the store: the thread-safe Arrow read path."""

    def read_arrow(self, sql: str, params: list[Any] | None = None) -> pa.Table: ...


def _np(table: pa.Table, name: str, dtype: Any = None) -> np.ndarray:
    col = table.column(name)
    if dtype is np.float64:
        return col.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    return col.to_numpy(zero_copy_only=False)


@dataclass
class Rows:
    """A selection of request rows, sorted by ts."""

    ts: np.ndarray
    ok: np.ndarray
    latency_ms: np.ndarray
    divergence: np.ndarray

    @property
    def n(self) -> int:
        return int(self.ts.size)

    def span(self, start: float, end: float) -> Rows:
        """Rows with start < ts <= end (views, no copy)."""
        a, b = int(np.searchsorted(self.ts, start, "right")), int(np.searchsorted(self.ts, end, "right"))
        return Rows(self.ts[a:b], self.ok[a:b], self.latency_ms[a:b], self.divergence[a:b])

    def where(self, mask: np.ndarray) -> Rows:
        return Rows(self.ts[mask], self.ok[mask], self.latency_ms[mask], self.divergence[mask])


@dataclass
class RequestFrame:
    """Rows of `requests` in (start, end], sorted by ts."""

    start: float
    end: float
    ts: np.ndarray
    standby: np.ndarray
    shadow: np.ndarray
    ok: np.ndarray
    latency_ms: np.ndarray
    divergence: np.ndarray  # NaN when the row was not compared
    in_bundle: np.ndarray | None  # row's bundle == the canary bundle asked for (None: not asked)

    @classmethod
    def fetch(cls, reader: TelemetryReader, start: float, end: float, bundle: str | None = None) -> RequestFrame:
        match, params = ("bundle = ?", [bundle]) if bundle is not None else ("NULL::BOOLEAN", [])
        t = reader.read_arrow(
            f"SELECT ts, slot = 'standby' AS standby, shadow, ok, latency_ms, divergence, {match} AS in_bundle "
            "FROM requests WHERE ts > ? AND ts <= ?", [*params, start, end])
        ts = _np(t, "ts", np.float64)
        order = np.argsort(ts, kind="stable")
        div = t.column("divergence").to_numpy(zero_copy_only=False).astype(np.float64)  # nulls -> NaN
        return cls(start, end, ts[order], _np(t, "standby").astype(bool)[order],
                   _np(t, "shadow").astype(bool)[order], _np(t, "ok").astype(bool)[order],
                   _np(t, "latency_ms", np.float64)[order], div[order],
                   _np(t, "in_bundle").astype(bool)[order] if bundle is not None else None)

    _groups: dict[tuple[bool | None, str, bool], Rows] = field(default_factory=dict, repr=False)

    def extended(self, newer: RequestFrame, keep_from: float, cut: float) -> RequestFrame:
        """Rows of self in (keep_from, cut] followed by `newer` (whose rows are all > cut)."""
        a = int(np.searchsorted(self.ts, keep_from, "right"))
        b = int(np.searchsorted(self.ts, cut, "right"))

        def cat(x: np.ndarray | None, y: np.ndarray | None) -> np.ndarray | None:
            return None if x is None or y is None else np.concatenate([x[a:b], y])

        out = RequestFrame(keep_from, newer.end, cat(self.ts, newer.ts), cat(self.standby, newer.standby),
                           cat(self.shadow, newer.shadow), cat(self.ok, newer.ok),
                           cat(self.latency_ms, newer.latency_ms), cat(self.divergence, newer.divergence),
                           cat(self.in_bundle, newer.in_bundle))  # type: ignore[arg-type]
        for key, old in self._groups.items():  # groups grow by the new rows only
            old = old.span(keep_from, cut)
            new = newer.rows(*key)
            out._groups[key] = Rows(np.concatenate([old.ts, new.ts]), np.concatenate([old.ok, new.ok]),
                                    np.concatenate([old.latency_ms, new.latency_ms]),
                                    np.concatenate([old.divergence, new.divergence]))
        return out

    def rows(self, standby: bool | None, channel: str, bundle_only: bool = False) -> Rows:
        """One slot's rows (or all) of a channel (all | live | shadow), masked once per pass, shared by gates."""
        key = (standby, channel, bundle_only)
        if key not in self._groups:
            mask = np.ones(self.ts.size, dtype=bool)
            if standby is not None:
                mask &= self.standby == standby
            if channel == "live":
                mask &= ~self.shadow
            elif channel == "shadow":
                mask &= self.shadow
            if bundle_only and self.in_bundle is not None:
                mask &= self.in_bundle
            self._groups[key] = Rows(self.ts[mask], self.ok[mask], self.latency_ms[mask], self.divergence[mask])
        return self._groups[key]


@dataclass
class MetricFrame:
    """Samples of the requested metrics in (start, end], per series, sorted by ts."""

    series: dict[int, tuple[str, dict[str, str]]] = field(default_factory=dict)
    ts: dict[int, np.ndarray] = field(default_factory=dict)
    values: dict[int, np.ndarray] = field(default_factory=dict)
    latest: dict[int, tuple[float, float]] = field(default_factory=dict)  # series -> (ts, value)

    @staticmethod
    def _placeholders(n: int) -> str:
        return ", ".join("?" for _ in range(n))

    @classmethod
    def fetch(cls, reader: TelemetryReader, windowed: dict[str, float], latest: dict[str, float],
              end: float) -> MetricFrame:
        """windowed: metric -> earliest start needed; latest: metric -> lookback for its last value."""
        frame = cls()
        names = sorted(set(windowed) | set(latest))
        if not names:
            return frame
        t = reader.read_arrow(f"SELECT id, metric, labels FROM series WHERE metric IN ({cls._placeholders(len(names))})",
                              names)
        by_metric: dict[str, list[int]] = {}
        for sid, metric, labels in zip(t.column("id").to_pylist(), t.column("metric").to_pylist(),
                                       t.column("labels").to_pylist(), strict=True):
            lab = json.loads(labels) if isinstance(labels, str) else dict(labels or {})
            frame.series[int(sid)] = (metric, {str(k): str(v) for k, v in lab.items()})
            by_metric.setdefault(metric, []).append(int(sid))
        win_ids = [s for m in windowed for s in by_metric.get(m, [])]
        if win_ids:
            start = min(windowed[m] for m in windowed if m in by_metric) if any(m in by_metric for m in windowed) else end
            s = reader.read_arrow(
                f"SELECT series_id, ts, value FROM samples WHERE series_id IN ({cls._placeholders(len(win_ids))}) "
                "AND ts > ? AND ts <= ?", [*win_ids, start, end])
            sid = _np(s, "series_id").astype(np.int64)
            ts, val = _np(s, "ts", np.float64), _np(s, "value", np.float64)
            order = np.lexsort((ts, sid))
            sid, ts, val = sid[order], ts[order], val[order]
            cuts = np.flatnonzero(np.diff(sid)) + 1
            for a, b in zip(np.r_[0, cuts], np.r_[cuts, sid.size], strict=True):
                if b > a:
                    frame.ts[int(sid[a])], frame.values[int(sid[a])] = ts[a:b], val[a:b]
        last_ids = [s for m in latest for s in by_metric.get(m, [])]
        if last_ids:
            start = end - max(latest.values())
            s = reader.read_arrow(
                "SELECT series_id, max(ts) AS ts, arg_max(value, ts) AS value FROM samples "
                f"WHERE series_id IN ({cls._placeholders(len(last_ids))}) AND ts > ? AND ts <= ? GROUP BY series_id",
                [*last_ids, start, end])
            for sid, ts, val in zip(s.column("series_id").to_pylist(), s.column("ts").to_pylist(),
                                    s.column("value").to_pylist(), strict=True):
                frame.latest[int(sid)] = (float(ts), float(val))
        return frame

    def matching(self, metric: str, labels: dict[str, str]) -> list[int]:
        return [sid for sid, (m, lab) in self.series.items()
                if m == metric and all(lab.get(k) == v for k, v in labels.items())]

    def window(self, ids: Iterable[int], start: float, end: float) -> tuple[np.ndarray, np.ndarray]:
        """(ts, values) of the series in (start, end], merged and sorted by ts."""
        parts_t, parts_v = [], []
        for sid in ids:
            ts = self.ts.get(sid)
            if ts is None:
                continue
            a, b = np.searchsorted(ts, start, "right"), np.searchsorted(ts, end, "right")
            parts_t.append(ts[a:b])
            parts_v.append(self.values[sid][a:b])
        if not parts_t:
            return np.empty(0), np.empty(0)
        ts, vals = np.concatenate(parts_t), np.concatenate(parts_v)
        order = np.argsort(ts, kind="stable")
        return ts[order], vals[order]

    def last(self, ids: Iterable[int]) -> tuple[float, float] | None:
        found = [self.latest[s] for s in ids if s in self.latest]
        return max(found) if found else None
