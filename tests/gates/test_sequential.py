"""Sequential tests: the false-alarm budget holds under continuous checking, and power is real."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from samantha.gates import sequential as seq


def _null_streams(rng, streams, bins, rate_fn, n_rate=20):
    """Canary and incumbent share the same (time-varying) event rate in every bin."""
    n_c = rng.poisson(n_rate, (streams, bins))
    n_i = rng.poisson(n_rate, (streams, bins))
    p = rate_fn(np.arange(bins))
    return n_c, rng.binomial(n_c, p), n_i, rng.binomial(n_i, p)


@pytest.mark.parametrize("rate", ["constant", "bursty"])
def test_two_sample_alpha_budget_under_continuous_checking(rate):
    # alpha = 0.05 so a violation would be visible with 1500 streams; every bin is a check
    rng = np.random.default_rng(11)
    alpha, streams, bins = 0.05, 1500, 300
    fn = (lambda t: np.full(t.size, 0.05)) if rate == "constant" else \
        (lambda t: np.where((t // 30) % 3 == 0, 0.3, 0.01))  # load bursts hit both slots
    n_c, x_c, n_i, x_i = _null_streams(rng, streams, bins, fn)
    alarms = sum(seq.two_sample_msprt(n_c[k], x_c[k], n_i[k], x_i[k], alpha).crossed for k in range(streams))
    rate_obs = alarms / streams
    assert rate_obs <= alpha + 3 * np.sqrt(alpha * (1 - alpha) / streams), rate_obs


def test_margin_test_alpha_holds_at_the_margin():
    # true odds ratio exactly at the tolerated margin: the worst case the null allows
    rng = np.random.default_rng(5)
    alpha, streams, bins, kappa = 0.05, 400, 120, 2.0
    alarms = 0
    for _ in range(streams):
        n_c, n_i = rng.poisson(20, bins), rng.poisson(20, bins)
        p_i = 0.2
        odds = kappa * p_i / (1 - p_i)
        p_c = odds / (1 + odds)
        alarms += seq.two_sample_msprt(n_c, rng.binomial(n_c, p_c), n_i, rng.binomial(n_i, p_i), alpha,
                                       null_odds=kappa).crossed
    assert alarms / streams <= alpha + 3 * np.sqrt(alpha * (1 - alpha) / streams)


def test_one_sample_alpha_budget():
    rng = np.random.default_rng(3)
    alpha, streams, bins, p0 = 0.05, 1500, 300, 0.01
    n = rng.poisson(40, (streams, bins))
    x = rng.binomial(n, p0)
    alarms = sum(seq.one_sample_msprt(n[k], x[k], p0, alpha).crossed for k in range(streams))
    assert alarms / streams <= alpha + 3 * np.sqrt(alpha * (1 - alpha) / streams)


def test_power_hard_case_is_caught_in_the_first_second():
    rng = np.random.default_rng(4)
    bins = 50  # 0.2 s bins at 200 rps: 40 requests per slot per bin
    n_c, n_i = rng.poisson(40, bins), rng.poisson(40, bins)
    r = seq.two_sample_msprt(n_c, rng.binomial(n_c, 0.21), n_i, rng.binomial(n_i, 0.01), 0.001 / 6)
    assert r.crossed and r.cross_bin is not None and (r.cross_bin + 1) * 0.2 <= 1.0


def test_cache_gives_the_same_answer():
    rng = np.random.default_rng(6)
    n_c, n_i = rng.poisson(30, 400), rng.poisson(30, 400)
    x_c, x_i = rng.binomial(n_c, 0.05), rng.binomial(n_i, 0.04)
    cache = seq.LLRCache()
    for k in (100, 200, 400):  # checks as the rollout goes on
        a = seq.two_sample_msprt(n_c[:k], x_c[:k], n_i[:k], x_i[:k], 0.01, null_odds=1.5, cache=cache)
        b = seq.two_sample_msprt(n_c[:k], x_c[:k], n_i[:k], x_i[:k], 0.01, null_odds=1.5)
        assert a.log_m == pytest.approx(b.log_m) and a.log_m_max == pytest.approx(b.log_m_max)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 50), st.integers(0, 50), st.integers(0, 50)),
                min_size=1, max_size=40))
def test_more_canary_events_never_lower_the_evidence(rows):
    n_c = np.array([max(a, b) for a, b, _, _ in rows])
    x_c = np.array([min(a, b) for a, b, _, _ in rows])
    n_i = np.array([max(c, d) for _, _, c, d in rows])
    x_i = np.array([min(c, d) for _, _, c, d in rows])
    base = seq.two_sample_msprt(n_c, x_c, n_i, x_i, 0.01)
    assert base.log_m_max >= base.log_m - 1e-9 and base.log_m_max >= 0
    more = np.minimum(x_c + 1, n_c)
    assert seq.two_sample_msprt(n_c, more, n_i, x_i, 0.01).log_m >= base.log_m - 1e-9


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 30), min_size=1, max_size=60), st.floats(0.001, 0.2))
def test_cusum_is_nonnegative_and_bounded_by_its_max(xs, p0):
    n = np.full(len(xs), 30)
    x = np.minimum(np.array(xs), 30)
    r = seq.cusum(n, x, p0, 2.0, 0.01)
    assert 0 <= r.log_m <= r.log_m_max + 1e-9
