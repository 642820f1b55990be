"""Sequential tests that may be checked after every time bin with one false-alarm budget.

Mixture likelihood-ratio martingales (mSPRT): under "no regression" the mixture
M_t is a nonnegative (super)martingale with M_0 = 1, so by Ville's inequality
P(sup_t M_t >= 1/alpha) <= alpha: checking it continuously for a whole rollout
spends alpha once. The mixture is a discrete prior over effect sizes, so small
and large regressions are both detected without tuning for one of them.

Two-sample form: within each time bin, conditional on how many requests each
group had and how many events (errors, slow requests) occurred in total, the
canary's event count is hypergeometric when both groups share the same rate -
whatever that rate is and however it moves from bin to bin. We score it with the
binomial form of the likelihood ratio (events drawn with replacement; canary odds
multiplied by theta under H1). That ratio is exp(lambda*x + c), a convex function
of x, and sampling without replacement is dominated in convex order by sampling
with replacement (Hoeffding 1963, Thm 4), so its expectation under the exact
hypergeometric null is <= 1: the product stays a supermartingale and Ville's
bound holds. It costs one vectorised scipy call instead of a per-element loop.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import special

# Odds ratios (two-sample) and rate multipliers (one-sample) mixed with equal weight.
ODDS_GRID = (1.25, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 100.0)
RATE_GRID = (1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 100.0)


@dataclass(frozen=True)
class SequentialResult:
    log_m: float  # log of the mixture statistic at the last bin
    log_m_max: float  # its running maximum (what continuous checking has seen)
    threshold: float  # log(1/alpha)
    crossed: bool
    cross_bin: int | None  # first bin index where log_m >= threshold
    bins: int
    events: tuple[int, int]  # (canary/test events, incumbent events)
    samples: tuple[int, int]

    def as_values(self) -> dict[str, float | int | bool | None]:
        return {"log_m": self.log_m, "log_m_max": self.log_m_max, "log_threshold": self.threshold,
                "crossed": self.crossed, "cross_bin": self.cross_bin, "bins": self.bins,
                "events_canary": self.events[0], "events_incumbent": self.events[1]}


def bin_counts(ts: np.ndarray, start: float, bin_s: float, nbins: int, event: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Requests and events per time bin [start + i*bin_s, start + (i+1)*bin_s)."""
    idx = np.floor((ts - start) / bin_s).astype(np.int64)
    keep = (idx >= 0) & (idx < nbins)
    idx = idx[keep]
    n = np.bincount(idx, minlength=nbins)
    x = np.bincount(idx, weights=event[keep].astype(np.float64), minlength=nbins).astype(np.int64)
    return n, x


def _mixture(llr: np.ndarray, alpha: float, samples: tuple[int, int], events: tuple[int, int],
             cache: LLRCache | None = None, same_until: int = 0) -> SequentialResult:
    """llr: (K, B) per-bin log likelihood ratios for K alternatives; equal prior weights.

    With a cache, the cumulative sums and the mixture of the first `same_until` bins (unchanged
    since the last check) are reused; only the later bins are summed and mixed again."""
    k, b = llr.shape
    thr = math.log(1.0 / alpha)
    if b == 0:
        return SequentialResult(0.0, 0.0, thr, False, None, 0, events, samples)
    s = 0
    if cache is not None and cache.cum is not None and cache.log_m is not None:
        s = min(same_until, cache.cum.shape[1], b)
    tail = np.cumsum(llr[:, s:], axis=1)
    if s:
        tail += cache.cum[:, s - 1:s]  # type: ignore[union-attr]
    log_tail = np.logaddexp.reduce(tail, axis=0) - math.log(k)  # log of the equal-weight mixture
    if s:
        cum = np.concatenate([cache.cum[:, :s], tail], axis=1)  # type: ignore[union-attr]
        log_m = np.concatenate([cache.log_m[:s], log_tail])  # type: ignore[index]
    else:
        cum, log_m = tail, log_tail
    if cache is not None:
        cache.cum, cache.log_m = cum, log_m
    hits = np.flatnonzero(log_m >= thr)
    return SequentialResult(float(log_m[-1]), float(max(0.0, log_m.max())), thr, bool(hits.size),
                            int(hits[0]) if hits.size else None, b, events, samples)


@dataclass
class LLRCache:
    """Per-bin log likelihood ratios of earlier evaluations: a bin whose counts did not change since the
    last check is not recomputed, so checking every 0.2 s over a long rollout costs only the new bins."""

    owner: tuple = ()  # who uses it (the engine's gate + rollout identity)
    key: tuple = ()  # what was computed (test form and its parameters)
    counts: np.ndarray | None = None
    llr: np.ndarray | None = None
    events: tuple = ()  # how events were defined (e.g. the latency threshold) when `counts` were taken
    stable_bins: int = 0  # bins whose rows can no longer change (older than the refetch margin)
    threshold: tuple[float, str] | None = None  # latency threshold from the pre-rollout baseline
    cum: np.ndarray | None = None  # (K, B) cumulative log LR per alternative
    log_m: np.ndarray | None = None  # (B,) log of the mixture after each bin


def _with_cache(counts: np.ndarray, k: int, compute: Callable[[np.ndarray], np.ndarray],
                cache: LLRCache | None, key: tuple) -> tuple[np.ndarray, int]:
    """Per-bin LLRs, recomputing only bins whose counts changed; and how many leading bins are unchanged."""
    b = counts.shape[1]
    llr = np.zeros((k, b))
    todo = np.arange(b)
    same_until = 0
    if cache is not None and cache.key == key and cache.counts is not None and cache.llr is not None:
        m = min(b, cache.counts.shape[1])
        same = np.all(cache.counts[:, :m] == counts[:, :m], axis=0)
        llr[:, :m][:, same] = cache.llr[:, :m][:, same]
        todo = np.concatenate([np.flatnonzero(~same), np.arange(m, b)])
        changed = np.flatnonzero(~same)
        same_until = int(changed[0]) if changed.size else m
    if todo.size:
        llr[:, todo] = compute(todo)
    if cache is not None:
        if cache.key != key:
            cache.cum, cache.log_m = None, None
        cache.key, cache.counts, cache.llr = key, counts.copy(), llr
    return llr, same_until


def two_sample_msprt(n_c: np.ndarray, x_c: np.ndarray, n_i: np.ndarray, x_i: np.ndarray, alpha: float,
                     odds: tuple[float, ...] = ODDS_GRID, null_odds: float = 1.0,
                     cache: LLRCache | None = None) -> SequentialResult:
    """H0: in every bin the canary's event odds are at most `null_odds` times the incumbent's;
    H1: odds ratio null_odds * theta, mixed over theta in `odds`.

    null_odds = 1 uses the binomial form (see module docstring); a margin (> 1) uses the exact
    conditional law, Fisher's noncentral hypergeometric, whose likelihood ratio is monotone in
    the odds ratio, so any true ratio <= null_odds keeps the mixture a supermartingale.
    """
    counts = np.vstack([np.asarray(a, dtype=np.int64) for a in (n_c, x_c, n_i, x_i)])

    def compute(idx: np.ndarray) -> np.ndarray:
        n_c, x_c, n_i, x_i = counts[:, idx]
        total, events = n_c + n_i, x_c + x_i
        informative = (n_c > 0) & (n_i > 0) & (events > 0)
        llr = np.zeros((len(odds), idx.size))
        if not informative.any():
            return llr
        if null_odds != 1.0:
            informative &= events < total  # every row had the event: the split carries no information
            m, n, big_n, x = total[informative], n_c[informative], events[informative], x_c[informative]
            theta = null_odds * np.asarray(odds, dtype=np.float64)[:, None]
            from scipy import stats  # loaded on first use (~60 MB resident)

            null = stats.nchypergeom_fisher.logpmf(x, m, n, big_n, null_odds)
            alt = stats.nchypergeom_fisher.logpmf(x[None, :], m[None, :], n[None, :], big_n[None, :], theta)
            llr[:, informative] = alt - null[None, :]
        else:
            big_n, x = events[informative], x_c[informative]
            r = n_c[informative] / total[informative]  # the canary's share of events under H0
            theta = np.asarray(odds, dtype=np.float64)[:, None]
            r1 = r * theta / (r * theta + 1.0 - r)
            # binomial log likelihood ratio for the same N: the binomial coefficients cancel
            llr[:, informative] = special.xlogy(x, r1 / r) + special.xlogy(big_n - x, (1.0 - r1) / (1.0 - r))
        return llr

    llr, same = _with_cache(counts, len(odds), compute, cache, ("two", odds, null_odds))
    return _mixture(llr, alpha, (int(counts[0].sum()), int(counts[2].sum())),
                    (int(counts[1].sum()), int(counts[3].sum())), cache, same)


def one_sample_msprt(n: np.ndarray, x: np.ndarray, p0: float, alpha: float,
                     multipliers: tuple[float, ...] = RATE_GRID, cache: LLRCache | None = None) -> SequentialResult:
    """H0: event rate <= p0 (a bound, e.g. allowed divergence); H1: rate = p0 * r, mixed over r."""
    n, x = np.asarray(n, dtype=np.int64), np.asarray(x, dtype=np.int64)
    counts = np.vstack([n, x])
    p1 = np.minimum(np.asarray(multipliers, dtype=np.float64) * p0, 0.999)[:, None]

    def compute(idx: np.ndarray) -> np.ndarray:
        nn, xx = counts[:, idx]
        return special.xlogy(xx, p1 / p0) + special.xlogy(nn - xx, (1.0 - p1) / (1.0 - p0))

    llr, same = _with_cache(counts, len(multipliers), compute, cache, ("one", multipliers, p0))
    return _mixture(llr, alpha, (int(n.sum()), 0), (int(x.sum()), 0), cache, same)


def cusum(n: np.ndarray, x: np.ndarray, p0: float, ratio: float, alpha: float) -> SequentialResult:
    """Page's CUSUM for a rate rising from p0 to ratio*p0; alarm at log(1/alpha) (ARL ~ 1/alpha bins)."""
    n, x = np.asarray(n, dtype=np.int64), np.asarray(x, dtype=np.int64)
    thr = math.log(1.0 / alpha)
    p1 = min(p0 * ratio, 0.999)
    # binom.logpmf(x, n, p1) - binom.logpmf(x, n, p0): the binomial coefficients cancel
    llr = special.xlogy(x, p1 / p0) + special.xlog1py(n - x, -p1) - special.xlog1py(n - x, -p0)
    c = np.concatenate([[0.0], np.cumsum(llr)])
    s = (c - np.minimum.accumulate(c))[1:]  # S_t = max(0, S_{t-1} + llr_t), vectorised
    hits = np.flatnonzero(s >= thr)
    last = float(s[-1]) if s.size else 0.0
    return SequentialResult(last, float(s.max()) if s.size else 0.0, thr, bool(hits.size),
                            int(hits[0]) if hits.size else None, int(n.size), (int(x.sum()), 0), (int(n.sum()), 0))
