"""Fixed-window statistics: scipy does the tests; these check the shaping and the decisions."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from samantha.gates import statistics as S

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@given(arrays(np.float64, st.integers(1, 200), elements=finite))
def test_aggregates_match_numpy(x):
    assert S.aggregate(x, "mean", 10) == pytest.approx(np.mean(x))
    assert S.aggregate(x, "max", 10) == np.max(x)
    assert S.aggregate(x, "last", 10) == x[-1]
    assert S.aggregate(x, "p99", 10) == pytest.approx(np.quantile(x, 0.99))
    assert S.aggregate(x, "rate", 10) == x.size / 10


def test_empty_aggregate_is_nan_not_zero():
    assert np.isnan(S.aggregate(np.empty(0), "mean", 10))


@given(st.sampled_from(["<", "<=", ">", ">="]), finite, finite)
def test_compare_ops_are_consistent(op, a, b):
    assert S.compare(op, a, b) == {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


def test_latency_judge():
    rng = np.random.default_rng(1)
    inc = 20 * np.exp(0.3 * rng.standard_normal(2000))
    slow = S.latency_mwu(inc * 1.3, inc[::-1].copy(), shift_below=0.01)
    assert slow.p_value < 1e-10 and slow.hl_shift_ms == pytest.approx(6.0, rel=0.25)
    same = S.latency_mwu(20 * np.exp(0.3 * rng.standard_normal(2000)), inc, shift_below=0.01)
    assert same.p_value > 0.001 and np.isnan(same.hl_shift_ms)  # the shift is only computed when it matters


def test_hodges_lehmann_is_the_shift():
    a = np.arange(100.0)
    assert S.hodges_lehmann(a + 7, a) == pytest.approx(7.0)


def test_proportions():
    r = S.errors_fisher(30, 1000, 10, 1000)
    assert r.p_value < 0.002 and r.canary_rate == 0.03
    assert S.errors_fisher(10, 1000, 10, 1000).p_value > 0.4
    p, rate, upper = S.rate_above(0, 5000, 0.01)
    assert p == 1.0 and rate == 0 and upper < 0.001
    p, rate, upper = S.rate_above(250, 5000, 0.01)
    assert p < 1e-20 and upper > 0.05


def test_drift_defaults_follow_evidently():
    rng = np.random.default_rng(2)
    base = rng.normal(0, 1, 500)
    small = S.drift(rng.normal(0, 1, 400), base)
    assert small.method == "ks" and not small.drifted and small.threshold == 0.05
    shifted = S.drift(rng.normal(0.5, 1, 400), base)
    assert shifted.method == "ks" and shifted.drifted and shifted.p_value < 0.05
    big_base = rng.normal(0, 1, 5000)
    big = S.drift(rng.normal(0.3, 1, 5000), big_base)
    assert big.method == "wasserstein" and big.drifted and big.statistic == pytest.approx(0.3, abs=0.06)
    assert not S.drift(rng.normal(0.02, 1, 5000), big_base).drifted
    psi = S.drift(rng.normal(1, 1, 3000), big_base, method="psi")
    assert psi.drifted and psi.statistic > 0.1
    assert not S.drift(rng.normal(0, 1, 3000), big_base, method="psi").drifted


@settings(max_examples=40, deadline=None)
@given(arrays(np.float64, st.integers(30, 300), elements=st.floats(-100, 100, allow_nan=False)),
       st.sampled_from(["ks", "wasserstein", "psi"]))
def test_a_sample_never_drifts_from_itself(x, method):
    r = S.drift(x, x.copy(), method=method)
    assert not r.drifted
