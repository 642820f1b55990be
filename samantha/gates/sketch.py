"""Latency quantiles from per-second bins of DDSketch bucket counts, kept between passes.

A threshold or compare gate on `p95`/`p99` latency used to sort (partition) every raw row of its
window on every pass. Here each request group of the engine's carried frame keeps, per bin of
`BIN_S` seconds, the counts of DDSketch buckets as cumulative sums; a pass adds only the rows that
arrived since the previous one, and a window's histogram is one subtraction of two cumulative rows
plus the raw rows of its two partial edge bins. So counts are exact; only the quantile's value is
approximate.

Accuracy (DDSketch, Masson et al. 2019): a positive value x falls in bucket k = ceil(log_gamma x),
gamma = (1 + a) / (1 - a), whose representative value is within relative accuracy `a` of every
value in it. The two order statistics around rank q * (n - 1) are read as their buckets' values and
interpolated as numpy does, so for `RELATIVE_ACCURACY` = a the result is within a of numpy's
(linear) quantile: exact * (1 - a) <= sketch <= exact * (1 + a).

The mapping (gamma, bucket values) is `ddsketch.LogarithmicMapping`; the bucket counts are numpy
arrays because a pure-Python sketch per bin, merged over a 300-bin window on every pass, costs more
than the sort it replaces. A window holding a value the sketch cannot bucket (negative, NaN,
infinite) returns None, and the caller computes the exact quantile over the raw rows, as before.
"""

from __future__ import annotations

import math

import numpy as np
from ddsketch import LogarithmicMapping

RELATIVE_ACCURACY = 0.01  # 1%: DDSketch's default; a p99 of 200 ms reads as 198-202 ms
BIN_S = 1.0
MAPPING = LogarithmicMapping(RELATIVE_ACCURACY)
_LN_GAMMA = math.log(MAPPING.gamma)
# histogram columns: 0 = values the sketch cannot hold, 1 = zeros (below min_possible), 2.. = keys kmin..
_BAD, _ZERO, _KEYS = 0, 1, 2
# below this many rows numpy's exact quantile is as cheap as the sketch's fixed cost (the two edge bins'
# keys, a cumulative sum over the keys): measured crossover 5-10k rows; small windows stay exact
SKETCH_MIN_ROWS = 5000
# a window spanning more bins x keys than this (hours of bins) is not sketched: its quantile stays exact,
# and the daemon's memory stays bounded (4 bytes a cell: 8 MB per request group at most)
MAX_CELLS = 2_000_000


def _columns(values: np.ndarray, kmin: int) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Histogram column per value (against a key range starting at `kmin`), which values have a bucket key,
    and the lowest and highest key among them ((kmin, kmin - 1) when none), so a caller can widen its range."""
    v = np.asarray(values, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        k = np.ceil(np.log(v) / _LN_GAMMA)  # LogarithmicMapping.key, vectorised
    real = np.isfinite(v) & (v > MAPPING.min_possible) & (v <= MAPPING.max_possible)
    zero = (v >= 0) & (v <= MAPPING.min_possible)
    kr = k[real].astype(np.int64)
    lo, hi = (int(kr.min()), int(kr.max())) if kr.size else (kmin, kmin - 1)
    col = np.full(v.size, _BAD, dtype=np.int64)
    col[zero] = _ZERO
    col[real] = _KEYS + kr - kmin
    return col, real, lo, hi


def quantile(hist: np.ndarray, kmin: int, q: float) -> float | None:
    """The q-quantile of a histogram in this module's column layout; None when the histogram is empty or
    holds a value the sketch cannot bucket.

    numpy's linear rule over bucket values: the order statistics at ranks floor(q (n - 1)) and the next
    one are each read as their bucket's value (what `DDSketch.get_quantile_value` returns for the first),
    then interpolated. Each is within RELATIVE_ACCURACY of the true order statistic, so their mix is
    within it of numpy's quantile; DDSketch's own rule (the lower one alone) is biased low on small
    samples (a 3 s window of a few dozen probes), which moved a median compare by milliseconds."""
    n = int(hist.sum())
    if n == 0 or hist[_BAD] > 0:
        return None
    rank = q * (n - 1)
    f = math.floor(rank)
    lo, frac = order_statistic(hist, kmin, f), rank - f
    return lo if frac <= 0 or f + 1 >= n else lo + frac * (order_statistic(hist, kmin, f + 1) - lo)


def order_statistic(hist: np.ndarray, kmin: int, r: int) -> float:
    """The bucket value of the order statistic at rank r (0-based): the first bucket whose cumulative count
    exceeds r, DDSketch's `key_at_rank` rule."""
    i = int(np.searchsorted(np.cumsum(hist[_ZERO:]), r, "right"))
    return 0.0 if i == 0 else float(MAPPING.value(kmin + i - 1))


def _bin_of(ts: np.ndarray) -> np.ndarray:
    """Bin b holds ts in (b * BIN_S, (b + 1) * BIN_S], matching the windows' (start, end] convention."""
    return (np.ceil(ts / BIN_S) - 1).astype(np.int64)


class LatencyBins:
    """Cumulative per-bin DDSketch bucket counts of one request group's latencies (rows sorted by ts).

    `cum[i]` is the histogram of the rows in bins b0 .. b0 + i - 1; bins wholly inside a window are read
    from it, the rows of the window's partial edge bins from `ts` / `latency` directly."""

    def __init__(self, ts: np.ndarray, latency: np.ndarray, valid_from: float, b0: int, kmin: int,
                 cum: np.ndarray, lookback: float = 0.0) -> None:
        self.ts, self.latency, self.valid_from = ts, latency, valid_from
        self.b0, self.kmin, self.cum = b0, kmin, cum
        # the longest window asked of this group so far: bins older than that are not kept (the carried
        # frame spans the widest window of any gate, often 20 minutes; quantile windows are seconds to minutes)
        self.lookback = lookback

    @classmethod
    def build(cls, ts: np.ndarray, latency: np.ndarray, valid_from: float) -> LatencyBins | None:
        """None when the rows span too many bins to sketch (see MAX_CELLS)."""
        b0 = int(_bin_of(ts[:1])[0]) if ts.size else 0
        return cls(ts, latency, valid_from, b0, 0, np.zeros((1, _KEYS), dtype=np.int32))._appended(0)

    def _appended(self, keep: int) -> LatencyBins | None:
        """Keep the first `keep` bins' counts, recount every later bin from the rows (self.ts / latency)."""
        keep = max(0, min(keep, self.cum.shape[0] - 1))
        a = int(np.searchsorted(self.ts, (self.b0 + keep) * BIN_S, "right"))
        ts, lat = self.ts[a:], self.latency[a:]
        cum, kmin = self.cum[:keep + 1], self.kmin
        col, real, lo, hi = _columns(lat, kmin)
        width = cum.shape[1] - _KEYS
        if hi >= lo and (width == 0 or lo < kmin or hi >= kmin + width):  # widen the key range
            new_min = lo if width == 0 else min(kmin, lo)
            new_max = hi if width == 0 else max(kmin + width - 1, hi)
            grown = np.zeros((cum.shape[0], _KEYS + new_max - new_min + 1), dtype=np.int32)
            grown[:, :_KEYS] = cum[:, :_KEYS]
            grown[:, _KEYS + kmin - new_min:_KEYS + kmin - new_min + width] = cum[:, _KEYS:]
            col[real] += kmin - new_min
            cum, kmin = grown, new_min
        out = LatencyBins(self.ts, self.latency, self.valid_from, self.b0, kmin, cum, self.lookback)
        if ts.size == 0:
            return out
        b = _bin_of(ts) - (self.b0 + keep)
        nb, width = int(b[-1]) + 1, cum.shape[1]
        if (cum.shape[0] + nb) * width > MAX_CELLS:
            return None
        hist = np.bincount(b * width + col, minlength=nb * width).reshape(nb, width)
        out.cum = np.vstack([cum, np.cumsum(hist, axis=0).astype(np.int32) + cum[-1]])
        return out

    def extended(self, ts: np.ndarray, latency: np.ndarray, keep_from: float, cut: float) -> LatencyBins | None:
        """The group's rows once the frame kept (keep_from, cut] and appended rows > cut: bins that end at
        or before `cut` keep their counts, later bins are recounted. Bins before `keep_from`, or before the
        longest window asked so far (counted back from `cut`), are dropped; rows > cut (bins >= floor(cut))
        always land in a kept bin."""
        older = ts.size and ts[0] <= self.b0 * BIN_S  # kept rows before the first counted bin
        if math.floor(cut / BIN_S) < self.b0 or (older and self.lookback and cut - self.lookback < self.b0 * BIN_S):
            # new rows before the first bin, or a window reached back past it: count every row anew
            out = LatencyBins.build(ts, latency, keep_from)
            if out is not None:
                out.lookback = self.lookback
            return out
        first = max(keep_from, cut - self.lookback - BIN_S) if self.lookback else keep_from
        drop = max(0, min(math.floor(first / BIN_S) - 1, math.floor(cut / BIN_S)) - self.b0)
        drop = min(drop, self.cum.shape[0] - 1)
        base = LatencyBins(ts, latency, keep_from, self.b0 + drop, self.kmin, self.cum[drop:], self.lookback)
        return base._appended(math.floor(cut / BIN_S) - base.b0)  # bins < floor(cut) end at or before cut

    def histogram(self, start: float, end: float) -> np.ndarray:
        """Bucket counts of the rows with start < ts <= end."""
        self.lookback = max(self.lookback, end - start)
        ba = max(math.ceil(max(start, self.valid_from) / BIN_S), self.b0)  # first bin wholly after start
        bb = min(math.floor(end / BIN_S), self.b0 + self.cum.shape[0] - 1)  # bins < bb end at or before end
        if ba >= bb:
            return self._raw(start, end)
        full = (self.cum[bb - self.b0] - self.cum[ba - self.b0]).astype(np.int64)
        return full + self._raw(start, ba * BIN_S) + self._raw(bb * BIN_S, end)

    def _raw(self, start: float, end: float) -> np.ndarray:
        a, b = np.searchsorted(self.ts, start, "right"), np.searchsorted(self.ts, end, "right")
        hist = np.zeros(self.cum.shape[1], dtype=np.int64)
        if b > a:
            col = _columns(self.latency[a:b], self.kmin)[0]
            np.add.at(hist, col, 1)
        return hist

    def quantile(self, start: float, end: float, q: float) -> float | None:
        return quantile(self.histogram(start, end), self.kmin, q)
