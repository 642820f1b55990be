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

from samantha.gates.sketch import LatencyBins
from samantha.telemetry.schema import JUDGED_SQL


class TelemetryReader(Protocol):
    """What gates need from the store: the thread-safe Arrow read path."""

    def read_arrow(self, sql: str, params: list[Any] | None = None) -> pa.Table: ...


def _np(table: pa.Table, name: str, dtype: Any = None) -> np.ndarray:
    col = table.column(name)
    if dtype is np.float64:
        return col.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    return col.to_numpy(zero_copy_only=False)


def _latest_per_series(sid: np.ndarray, ts: np.ndarray, val: np.ndarray) -> tuple[list, list, list]:
    """Per series its newest (ts, value): what `max(ts), arg_max(value, ts) ... GROUP BY series_id` returns."""
    if sid.size == 0:
        return [], [], []
    order = np.lexsort((ts, sid))
    sid, ts, val = sid[order], ts[order], val[order]
    last = np.r_[np.flatnonzero(np.diff(sid)), sid.size - 1]
    return sid[last].tolist(), ts[last].tolist(), val[last].tolist()


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

    def head(self, n: int) -> Rows:
        return Rows(self.ts[:n], self.ok[:n], self.latency_ms[:n], self.divergence[:n])

    def where(self, mask: np.ndarray) -> Rows:
        return Rows(self.ts[mask], self.ok[mask], self.latency_ms[mask], self.divergence[mask])

    def as_dict(self) -> dict[str, np.ndarray]:
        return {"ts": self.ts, "ok": self.ok, "latency_ms": self.latency_ms, "divergence": self.divergence}


class _Columns:
    """Equal-length numpy columns that drop rows at the front and grow at the end in place.

    A live engine extends its window by a few hundred rows per pass; copying the whole
    window (hundreds of thousands of rows) every pass would dominate evaluation time.
    """

    def __init__(self, cols: dict[str, np.ndarray]) -> None:
        n = len(next(iter(cols.values())))
        self.base = {k: np.empty(max(1024, 2 * n), dtype=v.dtype) for k, v in cols.items()}
        for k, v in cols.items():
            self.base[k][:n] = v
        self.off, self.n = 0, n

    def view(self) -> dict[str, np.ndarray]:
        return {k: b[self.off:self.off + self.n] for k, b in self.base.items()}

    def holds(self, ts: np.ndarray) -> bool:
        """Whether the current view is exactly `ts`. Once a later pass has spliced these buffers, an
        older frame's views may be overwritten in place, so that frame must not be extended again."""
        v = self.base["ts"][self.off:self.off + self.n]
        return v.size == ts.size and (v.size == 0 or v.ctypes.data == ts.ctypes.data)

    def splice(self, a: int, b: int, new: dict[str, np.ndarray]) -> None:
        """Keep rows [a, b) of the current view, then append `new`."""
        m = len(next(iter(new.values())))
        keep, start = b - a, self.off + a
        cap = len(next(iter(self.base.values())))
        if start + keep + m > cap:
            fresh = {k: np.empty(max(1024, 2 * (keep + m)), dtype=v.dtype) for k, v in self.base.items()}
            for k, v in fresh.items():
                v[:keep] = self.base[k][start:start + keep]
            self.base, start = fresh, 0
        for k, v in self.base.items():
            v[start + keep:start + keep + m] = new[k]
        self.off, self.n = start, keep + m


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
    in_active: np.ndarray | None = None  # row's bundle == the active bundle asked for (None: not asked)

    @classmethod
    def fetch(cls, reader: TelemetryReader, start: float, end: float, bundle: str | None = None,
              active_bundle: str | None = None) -> RequestFrame:
        recent = getattr(reader, "recent", None)  # the store's newest committed rows, when it keeps them
        m = recent.requests(start, end, bundle, active_bundle) if recent is not None else None
        if m is not None:  # the same rows the query below returns, already numpy
            order = np.argsort(m["ts"], kind="stable")
            pick = {k: (None if v is None else v[order]) for k, v in m.items()}
            return cls(start, end, pick["ts"], pick["standby"], pick["shadow"], pick["ok"], pick["latency_ms"],
                       pick["divergence"], pick["in_bundle"], pick["in_active"])
        match, params = ("bundle = ?", [bundle]) if bundle is not None else ("NULL::BOOLEAN", [])
        amatch, aparams = ("bundle = ?", [active_bundle]) if active_bundle is not None else ("NULL::BOOLEAN", [])
        t = reader.read_arrow(
            f"SELECT ts, slot = 'standby' AS standby, shadow, ok, latency_ms, divergence, {match} AS in_bundle, "
            f"{amatch} AS in_active FROM requests WHERE ts > ? AND ts <= ? AND {JUDGED_SQL}",
            [*params, *aparams, start, end])
        ts = _np(t, "ts", np.float64)
        order = np.argsort(ts, kind="stable")
        div = t.column("divergence").to_numpy(zero_copy_only=False).astype(np.float64)  # nulls -> NaN
        return cls(start, end, ts[order], _np(t, "standby").astype(bool)[order],
                   _np(t, "shadow").astype(bool)[order], _np(t, "ok").astype(bool)[order],
                   _np(t, "latency_ms", np.float64)[order], div[order],
                   _np(t, "in_bundle").astype(bool)[order] if bundle is not None else None,
                   _np(t, "in_active").astype(bool)[order] if active_bundle is not None else None)

    _groups: dict[tuple[bool | None, str, bool], Rows] = field(default_factory=dict, repr=False)
    _cols: _Columns | None = field(default=None, repr=False)
    _gcols: dict[tuple[bool | None, str, bool], _Columns] = field(default_factory=dict, repr=False)
    _lbins: dict[tuple[bool | None, str, bool], LatencyBins | None] = field(default_factory=dict, repr=False)

    _FIELDS = ("ts", "standby", "shadow", "ok", "latency_ms", "divergence", "in_bundle", "in_active")

    def is_current(self) -> bool:
        """False once another frame was extended from the same buffers (see `_Columns.holds`)."""
        return self._cols is None or self._cols.holds(self.ts)

    def extended(self, newer: RequestFrame, keep_from: float, cut: float) -> RequestFrame:
        """Rows of self in (keep_from, cut] followed by `newer` (whose rows are all > cut).

        Columns live in buffers with spare room, so each pass copies only the new rows."""
        if keep_from > cut:
            raise ValueError(f"keep_from {keep_from} is after cut {cut}: nothing of this frame would be kept")
        a = int(np.searchsorted(self.ts, keep_from, "right"))
        b = int(np.searchsorted(self.ts, cut, "right"))
        names = [f for f in self._FIELDS if getattr(self, f) is not None and getattr(newer, f) is not None]
        cols = self._cols or _Columns({f: getattr(self, f) for f in names})
        if set(cols.base) != set(names):
            cols = _Columns({f: getattr(self, f) for f in names})
        cols.splice(a, b, {f: getattr(newer, f) for f in names})
        v = cols.view()
        out = RequestFrame(keep_from, newer.end, v["ts"], v["standby"], v["shadow"], v["ok"], v["latency_ms"],
                           v["divergence"], v.get("in_bundle"), v.get("in_active"), _cols=cols)
        for key, old in self._groups.items():  # groups grow by the new rows only
            ga = int(np.searchsorted(old.ts, keep_from, "right"))
            gb = int(np.searchsorted(old.ts, cut, "right"))
            gc = self._gcols.get(key) or _Columns(old.as_dict())
            gc.splice(ga, gb, newer.rows(*key).as_dict())
            out._gcols[key] = gc
            out._groups[key] = Rows(**gc.view())
        for key, lb in self._lbins.items():  # sketches count the new rows only (None: not sketchable, stays so)
            g = out._groups[key]
            out._lbins[key] = None if lb is None else lb.extended(g.ts, g.latency_ms, keep_from, cut)
        return out

    def latency_bins(self, standby: bool | None, channel: str, bundle_only: bool = False) -> LatencyBins | None:
        """The latency sketch of one group (see `rows`), built on first use and carried to extended frames;
        None when the group spans too long to sketch."""
        key = (standby, channel, bundle_only)
        if key not in self._lbins:
            g = self.rows(*key)
            self._lbins[key] = LatencyBins.build(g.ts, g.latency_ms, self.start)
        return self._lbins[key]

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
            # after a flip the active slot serves another bundle: its rows are only that bundle's requests
            if standby is False and self.in_active is not None:
                mask &= self.in_active
            self._groups[key] = Rows(self.ts[mask], self.ok[mask], self.latency_ms[mask], self.divergence[mask])
        return self._groups[key]


@dataclass
class LatestValues:
    """Latest value per series, carried between passes (staleness gauges change rarely)."""

    values: dict[int, tuple[float, float]] = field(default_factory=dict)
    until: float | None = None
    ids: set[int] = field(default_factory=set)
    margin_s: float = 5.0


@dataclass
class MetricCarry:
    """What a live engine keeps between passes over the samples table."""

    names: tuple[str, ...] = ()
    series_at: float | None = None  # series metadata is re-read after `series_refresh_s` of data time
    series_high: int | None = None  # ... or at once when the store created a series since (a flip's new role label)
    series_refresh_s: float = 10.0
    missing_refresh_s: float = 1.0
    series: dict[int, tuple[str, dict[str, str]]] = field(default_factory=dict)
    by_metric: dict[str, list[int]] = field(default_factory=dict)
    win_ids: tuple[int, ...] = ()
    win_start: float | None = None
    win_until: float | None = None
    win_ts: dict[int, np.ndarray] = field(default_factory=dict)
    win_val: dict[int, np.ndarray] = field(default_factory=dict)
    margin_s: float = 5.0  # samples this close to the last read are read again (late commits)
    latest: LatestValues = field(default_factory=lambda: LatestValues())


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
              end: float, carry: MetricCarry | None = None) -> MetricFrame:
        """windowed: metric -> earliest start needed; latest: metric -> lookback for its last value.

        `carry` keeps series metadata, windowed samples and latest values between passes, so a pass
        reads only the samples that arrived since the previous one."""
        frame = cls()
        names = tuple(sorted(set(windowed) | set(latest)))
        if not names:
            return frame
        carry = carry if carry is not None else MetricCarry()
        recent = getattr(reader, "recent", None)  # the store's newest committed rows, when it keeps them
        # a metric with no series yet (a gauge first written after the previous pass) is looked for again
        # within a second, not only at the periodic refresh
        refresh = carry.series_refresh_s if all(n in carry.by_metric for n in names) else min(
            carry.series_refresh_s, carry.missing_refresh_s)
        registry = getattr(reader, "series", None)  # the store's series registry, when the reader has one
        high = getattr(registry, "high_water", None)
        if (carry.names != names or carry.series_at is None or not 0 <= end - carry.series_at < refresh
                or (high is not None and high != carry.series_high)):
            commit_new_series = getattr(reader, "commit_new_series", None)
            if commit_new_series is not None:  # a series first written since the last commit is in DuckDB too
                commit_new_series()
            t = reader.read_arrow(f"SELECT id, metric, labels FROM series WHERE metric IN "
                                  f"({cls._placeholders(len(names))})", list(names))
            carry.series, carry.by_metric = {}, {}
            for sid, metric, labels in zip(t.column("id").to_pylist(), t.column("metric").to_pylist(),
                                           t.column("labels").to_pylist(), strict=True):
                lab = json.loads(labels) if isinstance(labels, str) else dict(labels or {})
                carry.series[int(sid)] = (metric, {str(k): str(v) for k, v in lab.items()})
                carry.by_metric.setdefault(metric, []).append(int(sid))
            carry.names, carry.series_at, carry.series_high = names, end, high
        frame.series, by_metric = carry.series, carry.by_metric
        win_ids = tuple(s for m in sorted(windowed) for s in by_metric.get(m, []))
        if win_ids:
            start = min(windowed[m] for m in windowed if m in by_metric)
            incremental = (carry.win_ids == win_ids and carry.win_start is not None and carry.win_until is not None
                           and carry.win_start <= start <= carry.win_until <= end)
            cut = carry.win_until - carry.margin_s if incremental else start  # type: ignore[operator]
            got = recent.samples(list(win_ids), cut, end) if recent is not None else None
            if got is None:
                s = reader.read_arrow(
                    f"SELECT series_id, ts, value FROM samples WHERE series_id IN ({cls._placeholders(len(win_ids))}) "
                    "AND ts > ? AND ts <= ?", [*win_ids, cut, end])
                got = _np(s, "series_id").astype(np.int64), _np(s, "ts", np.float64), _np(s, "value", np.float64)
            sid, ts, val = got
            order = np.lexsort((ts, sid))
            sid, ts, val = sid[order], ts[order], val[order]
            new: dict[int, tuple[np.ndarray, np.ndarray]] = {}
            cuts = np.flatnonzero(np.diff(sid)) + 1
            for a, b in zip(np.r_[0, cuts], np.r_[cuts, sid.size], strict=True):
                if b > a:
                    new[int(sid[a])] = (ts[a:b], val[a:b])
            if not incremental:
                carry.win_ts, carry.win_val = {}, {}
            empty = (np.empty(0), np.empty(0))
            for k in win_ids:
                old_t, old_v = carry.win_ts.get(k, empty[0]), carry.win_val.get(k, empty[1])
                i0, i1 = np.searchsorted(old_t, start, "right"), np.searchsorted(old_t, cut, "right")
                nt, nv = new.get(k, empty)
                carry.win_ts[k] = np.concatenate([old_t[i0:i1], nt])
                carry.win_val[k] = np.concatenate([old_v[i0:i1], nv])
            carry.win_ids, carry.win_start, carry.win_until = win_ids, start, end
            frame.ts = {k: v for k, v in carry.win_ts.items() if v.size}
            frame.values = {k: carry.win_val[k] for k in frame.ts}
        known = carry.latest
        last_ids = [s for m in latest for s in by_metric.get(m, [])]
        if last_ids:
            start = end - max(latest.values())
            if known.until is not None and start <= known.until <= end and known.ids >= set(last_ids):
                scan_from = known.until - known.margin_s  # only what arrived since the last pass
            else:
                known.values.clear()
                scan_from = start
            got = recent.samples(last_ids, scan_from, end) if recent is not None else None
            if got is not None:
                lsid, lts, lval = _latest_per_series(*got)
            else:
                s = reader.read_arrow(
                    "SELECT series_id, max(ts) AS ts, arg_max(value, ts) AS value FROM samples "
                    f"WHERE series_id IN ({cls._placeholders(len(last_ids))}) AND ts > ? AND ts <= ? GROUP BY series_id",
                    [*last_ids, scan_from, end])
                lsid, lts, lval = (s.column(c).to_pylist() for c in ("series_id", "ts", "value"))
            for sid, ts, val in zip(lsid, lts, lval, strict=True):
                old = known.values.get(int(sid))
                if old is None or ts >= old[0]:
                    known.values[int(sid)] = (float(ts), float(val))
            known.until, known.ids = end, set(last_ids)
            frame.latest = {k: v for k, v in known.values.items() if v[0] > start}
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
