"""Early success's equivalence test: with canary and incumbent swapped, the mSPRT rejects "the canary is
slower by the margin or more" at most beta of the time when that is true, and soon when the canary is as
fast as the incumbent. Simulated binned counts (pure logic)."""

from __future__ import annotations

import numpy as np
import pytest

from samantha.gates import sequential as seq
from samantha.gates.rollout_policy import EarlySuccess, RolloutPolicy


def _crossed(odds_ratio: float, rng: np.random.Generator, beta: float = 0.01, margin: float = 1.5,
             bins: int = 150, per_bin: int = 20) -> bool:
    p_i = 0.5
    o_c = odds_ratio * p_i / (1 - p_i)
    p_c = o_c / (1 + o_c)
    n = np.full(bins, per_bin)
    x_c, x_i = rng.binomial(n, p_c), rng.binomial(n, p_i)
    return seq.two_sample_msprt(n, x_i, n, x_c, beta, null_odds=1.0 / margin).crossed


def test_false_early_pass_bounded_by_beta_at_the_margin() -> None:
    rng = np.random.default_rng(7)
    runs = 300
    at_margin = sum(_crossed(1.5, rng) for _ in range(runs))
    assert at_margin / runs <= 0.02  # beta = 0.01, plus sampling slack over 300 runs
    assert sum(_crossed(2.0, rng) for _ in range(100)) == 0


def test_an_equal_canary_passes_early() -> None:
    rng = np.random.default_rng(8)
    assert sum(_crossed(1.0, rng) for _ in range(50)) >= 45


def test_early_success_is_off_by_default_and_validated() -> None:
    assert RolloutPolicy().early_success.enabled is False
    with pytest.raises(ValueError, match="margin_odds"):
        EarlySuccess(margin_odds=1.0)
