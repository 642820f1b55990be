"""Fixed-window statistics for gates. scipy does the tests; this module only shapes inputs and outputs.

All functions are pure: numpy arrays in, plain numbers out. scipy.stats (~60 MB resident) is imported
inside the functions that need it, so a daemon that judges no canary never loads it.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from samantha.gates.spec import quantile_of


def aggregate(values: np.ndarray, how: str, window_s: float) -> float:
    """One number from a window of values (already sorted by time for `last`)."""
    if values.size == 0:
        return math.nan
    if how == "mean":
        return float(np.mean(values))
    if how == "min":
        return float(np.min(values))
    if how == "max":
        return float(np.max(values))
    if how == "last":
        return float(values[-1])
    if how == "sum":
        return float(np.sum(values))
    if how == "count":
        return float(values.size)
    if how == "rate":
        return float(values.size / window_s) if window_s > 0 else math.nan
    q = quantile_of(how)
    if q is None:
        raise ValueError(f"unknown aggregate {how!r}")
    return float(np.quantile(values, q))


def counter_increase(values: np.ndarray) -> float:
    """Increase of a counter over its samples (in time order), Prometheus `increase()` without extrapolation.

    A drop is a reset (the server restarted, or reloaded the model, and counts again from 0): the count
    restarts and the value after the drop is all new. A reset followed by more counting than before
    within one scrape interval looks like plain growth, as it does to Prometheus."""
    if values.size < 2:
        return 0.0
    d = np.diff(values)
    return float(np.sum(np.where(d >= 0, d, values[1:])))


def compare(op: str, observed: float, bound: float) -> bool:
    return {"<": observed < bound, "<=": observed <= bound, ">": observed > bound, ">=": observed >= bound}[op]


def hodges_lehmann(a: np.ndarray, b: np.ndarray, cap: int = 600, seed: int = 0) -> float:
    """Median of all pairwise differences a_i - b_j: the shift estimate that goes with Mann-Whitney U.

    scipy has no Hodges-Lehmann estimator; large samples are subsampled (seeded) to cap^2 pairs.
    """
    rng = np.random.default_rng(seed)
    if a.size > cap:
        a = rng.choice(a, cap, replace=False)
    if b.size > cap:
        b = rng.choice(b, cap, replace=False)
    return float(np.median(np.subtract.outer(a, b)))


@dataclass(frozen=True)
class LatencyJudgement:
    p_value: float
    u_statistic: float
    hl_shift_ms: float
    hl_ratio: float  # the same estimator on log latency: the typical slowdown factor
    canary_median: float
    incumbent_median: float


def latency_mwu(canary: np.ndarray, incumbent: np.ndarray, shift_below: float = 1.0) -> LatencyJudgement:
    """Is the canary's latency stochastically greater? (one-sided Mann-Whitney U).

    The Hodges-Lehmann shift is only needed to judge a significant result, so it is
    computed when p < shift_below (NaN otherwise).
    """
    from scipy import stats

    res = stats.mannwhitneyu(canary, incumbent, alternative="greater", method="asymptotic")
    p = float(res.pvalue)
    shift = ratio = math.nan
    if p < shift_below:
        shift = hodges_lehmann(canary, incumbent)
        floor = 1e-6  # a 0 ms latency would make the log scale undefined
        ratio = math.exp(hodges_lehmann(np.log(np.maximum(canary, floor)), np.log(np.maximum(incumbent, floor))))
    return LatencyJudgement(p, float(res.statistic), shift, ratio, float(np.median(canary)),
                            float(np.median(incumbent)))


@dataclass(frozen=True)
class ProportionJudgement:
    p_value: float
    odds_ratio: float
    canary_rate: float
    incumbent_rate: float


@functools.lru_cache(maxsize=1024)
def errors_fisher(canary_errors: int, canary_n: int, incumbent_errors: int, incumbent_n: int) -> ProportionJudgement:
    """Does the canary fail more often? (one-sided Fisher exact test on the 2x2 table)."""
    table = [[canary_errors, canary_n - canary_errors], [incumbent_errors, incumbent_n - incumbent_errors]]
    from scipy import stats

    res = stats.fisher_exact(table, alternative="greater")
    return ProportionJudgement(float(res.pvalue), float(res.statistic),
                               canary_errors / canary_n, incumbent_errors / incumbent_n)


@functools.lru_cache(maxsize=1024)
def rate_above(k: int, n: int, max_rate: float) -> tuple[float, float, float]:
    """Exact binomial test that the rate exceeds max_rate: (p_value, observed rate, 95% upper bound)."""
    # binomtest(alternative="greater") is P(X >= k) = binom.sf(k - 1); beta.ppf is betaincinv (same boost code)
    p_value = 1.0 if k <= 0 else float(min(1.0, special.bdtrc(k - 1, n, max_rate)))
    upper = 1.0 if k >= n else float(special.betaincinv(k + 1, n - k, 0.95))  # one-sided Clopper-Pearson
    return p_value, k / n, upper


@dataclass(frozen=True)
class DriftResult:
    method: str
    statistic: float
    threshold: float
    drifted: bool
    p_value: float | None = None


def psi(current: np.ndarray, baseline: np.ndarray, bins: int = 10) -> float:
    """Population Stability Index over quantile bins of the baseline (as Evidently does)."""
    edges = np.unique(np.quantile(baseline, np.linspace(0, 1, bins + 1)))
    if edges.size < 2:  # a constant baseline: anything else is a shift
        edges = np.array([baseline[0] - 0.5, baseline[0] + 0.5])
    edges[0], edges[-1] = -np.inf, np.inf
    eps = 1e-4  # keeps empty bins finite, the usual PSI convention
    p = np.histogram(current, edges)[0] / current.size + eps
    q = np.histogram(baseline, edges)[0] / baseline.size + eps
    return float(np.sum(special.rel_entr(p, q) + special.rel_entr(q, p)))


WASSERSTEIN_CAP = 5000


def drift(current: np.ndarray, baseline: np.ndarray, method: str = "auto", threshold: float | None = None,
          large_sample: int = 1000, bins: int = 10) -> DriftResult:
    """Evidently-like defaults: KS p < 0.05 for small samples, normed Wasserstein >= 0.1 for large ones, PSI >= 0.1."""
    if method == "auto":
        method = "ks" if min(current.size, baseline.size) <= large_sample else "wasserstein"
    if method in ("ks", "wasserstein"):
        from scipy import stats
    if method == "ks":
        # exact p-values cost O(n*m); past a few hundred samples the asymptotic ones agree
        res = stats.ks_2samp(current, baseline, method="auto" if min(current.size, baseline.size) <= 300 else "asymp")
        thr = threshold if threshold is not None else 0.05
        return DriftResult("ks", float(res.statistic), thr, bool(res.pvalue < thr), float(res.pvalue))
    if method == "wasserstein":
        scale = float(np.std(baseline))
        # W1 of two 5000-point seeded subsamples is within ~0.02 sd of the full-sample value, far below the
        # 0.1 threshold, at a fraction of the sort-and-merge cost on large windows
        rng = np.random.default_rng(0)
        cur = rng.choice(current, WASSERSTEIN_CAP, replace=False) if current.size > WASSERSTEIN_CAP else current
        base = rng.choice(baseline, WASSERSTEIN_CAP, replace=False) if baseline.size > WASSERSTEIN_CAP else baseline
        dist = stats.wasserstein_distance(cur, base)
        normed = dist / scale if scale > 0 else (0.0 if dist == 0 else math.inf)
        thr = threshold if threshold is not None else 0.1
        return DriftResult("wasserstein", float(normed), thr, bool(normed >= thr))
    if method == "psi":
        value = psi(current, baseline, bins)
        thr = threshold if threshold is not None else 0.1
        return DriftResult("psi", value, thr, bool(value >= thr))
    raise ValueError(f"unknown drift method {method!r}")
