"""The statistical limit for `samantha bench judge`: Wald's SPRT with the true parameters.

It knows both distributions (the incumbent's and the degraded canary's), so its per-request likelihood
ratio is exact and no test at the same alpha and power can detect sooner on average (Wald-Wolfowitz).
It sees the same traffic as Samantha's gates in the same run (the per-bin canary request counts on the
live and shadow channels) and checks after every bin as they do; each request's value is drawn from the
true degraded distribution.

Latency: X = q(U) for the incumbent (q: the fitted quantile function), Y = g(U) for the canary with g
monotone, so the density ratio at y is q'(F(y)) / g'(G^-1(y)), computed on a fine grid of U.
Errors and divergence: Bernoulli with the true rates; a rate of 0 in the recording is floored at one
event in the recorded sample (an exact 0 would make the first event infinitely conclusive).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

LLR_CAP = 30.0  # per request: a value one distribution cannot produce is conclusive, not infinite


@dataclass(frozen=True)
class LatencyLR:
    """Per-request log density ratio for latencies, tabulated on a U grid."""

    x0: np.ndarray
    x1: np.ndarray
    log_d0: np.ndarray
    log_d1: np.ndarray
    grid: np.ndarray

    @classmethod
    def of(cls, q: Callable[[np.ndarray], np.ndarray], g: Callable[[np.ndarray], np.ndarray],
           n: int = 20001) -> LatencyLR:
        u = np.linspace(1e-5, 1 - 1e-5, n)
        x0, x1 = np.maximum.accumulate(q(u)), np.maximum.accumulate(g(u))
        d0, d1 = np.gradient(x0, u), np.gradient(x1, u)
        floor = 1e-9
        return cls(x0, x1, np.log(np.maximum(d0, floor)), np.log(np.maximum(d1, floor)), u)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """n canary latencies from the degraded distribution."""
        return np.interp(rng.uniform(size=n), self.grid, self.x1)

    def llr(self, y: np.ndarray) -> np.ndarray:
        u0, u1 = np.interp(y, self.x0, self.grid), np.interp(y, self.x1, self.grid)
        out = np.interp(u0, self.grid, self.log_d0) - np.interp(u1, self.grid, self.log_d1)
        out = np.where(y > self.x0[-1], LLR_CAP, out)  # beyond what the incumbent produces
        return np.clip(np.where(y < self.x1[0], -LLR_CAP, out), -LLR_CAP, LLR_CAP)


def wald_thresholds(alpha: float, beta: float) -> tuple[float, float]:
    """(reject H0 at or above, accept H0 at or below), Wald's approximations."""
    return math.log((1 - beta) / alpha), math.log(beta / (1 - alpha))


def sprt_bins(llr_per_bin: np.ndarray, alpha: float, beta: float) -> int | None:
    """The first bin whose cumulative log LR reaches the upper threshold before the lower one; None otherwise."""
    upper, lower = wald_thresholds(alpha, beta)
    s = np.cumsum(llr_per_bin)
    up, down = np.flatnonzero(s >= upper), np.flatnonzero(s <= lower)
    if not up.size or (down.size and down[0] < up[0]):
        return None
    return int(up[0])


def bernoulli_bins(rng: np.random.Generator, n: np.ndarray, p0: float, p1: float, alpha: float,
                   beta: float) -> int | None:
    x = rng.binomial(n, p1)
    llr = x * math.log(p1 / p0) + (n - x) * math.log((1 - p1) / (1 - p0))
    return sprt_bins(llr, alpha, beta)


def latency_bins(rng: np.random.Generator, streams: list[tuple[np.ndarray, LatencyLR]], alpha: float,
                 beta: float) -> int | None:
    """streams: (per-bin request counts, that channel's density ratio), e.g. live canary and shadow."""
    nb = streams[0][0].size
    llr = np.zeros(nb)
    for n, lr in streams:
        total = int(n.sum())
        if total == 0:
            continue
        y = lr.sample(rng, total)
        llr += np.bincount(np.repeat(np.arange(nb), n), weights=lr.llr(y), minlength=nb)
    return sprt_bins(llr, alpha, beta)
