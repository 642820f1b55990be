"""Property tests per gate kind on in-memory window frames (pure logic; the store is covered elsewhere)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from samantha.gates import evaluate as ev
from samantha.gates.evaluate import EvalContext
from samantha.gates.spec import CompareGate, JudgeGate, SequentialGate, StalenessGate
from samantha.gates.windows import MetricFrame, RequestFrame

NOW = 1_000.0


def frame(lat_c, ok_c, lat_i, ok_i, *, shadow=True, div=None) -> RequestFrame:
    """Canary and incumbent rows spread over the last 50 s."""
    nc, ni = len(lat_c), len(lat_i)
    ts = np.concatenate([np.linspace(NOW - 50, NOW - 0.01, nc), np.linspace(NOW - 50, NOW - 0.01, ni)])
    order = np.argsort(ts, kind="stable")
    standby = np.r_[np.ones(nc, bool), np.zeros(ni, bool)]
    d = np.r_[np.full(nc, np.nan) if div is None else np.asarray(div, float), np.full(ni, np.nan)]
    return RequestFrame(NOW - 60, NOW, ts[order], standby[order], (standby & shadow)[order],
                        np.r_[ok_c, ok_i].astype(bool)[order], np.r_[lat_c, lat_i].astype(float)[order], d[order],
                        None)


lat = st.lists(st.floats(0.1, 1000, allow_nan=False), min_size=120, max_size=300)


@settings(max_examples=40, deadline=None)
@given(lat, st.integers(0, 20))
def test_compare_and_judges_never_fail_a_canary_identical_to_the_incumbent(xs, errors):
    ok = np.ones(len(xs), bool)
    ok[:errors] = False
    rf = frame(xs, ok, xs, ok)
    ctx = EvalContext(now=NOW)
    for g in (CompareGate(name="c", metric="error_rate", max_increase=0.0),
              CompareGate(name="l", metric="latency_ms", aggregate="p99", max_ratio=1.0)):
        assert ev.compare(g, rf, ctx).status == "pass"
    for test in ("latency", "errors"):
        assert ev.judge(JudgeGate(name="j", test=test), rf, ctx).status == "pass"


@settings(max_examples=40, deadline=None)
@given(lat, st.floats(1.5, 5))
def test_latency_judge_fails_a_uniformly_slower_canary(xs, factor):
    xs = np.asarray(xs)
    rf = frame(xs * factor, np.ones(xs.size, bool), xs, np.ones(xs.size, bool))
    v = ev.judge(JudgeGate(name="j", test="latency", alpha=0.01), rf, EvalContext(now=NOW))
    assert v.status == "fail" and v.values["hl_shift_ms"] > 0


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 49), st.integers(50, 400))
def test_too_few_samples_is_inconclusive_for_every_request_gate(n_small, n_big):
    rf = frame(np.ones(n_small), np.ones(n_small, bool), np.ones(n_big), np.ones(n_big, bool))
    ctx = EvalContext(now=NOW, rollout_start=NOW - 50)
    for g in (CompareGate(name="c", metric="error_rate", max_increase=0.01), JudgeGate(name="j", test="errors"),
              JudgeGate(name="d", test="divergence")):
        assert (ev.compare if g.kind == "compare" else ev.judge)(g, rf, ctx).status == "inconclusive"
    s = ev.sequential(SequentialGate(name="s", signal="errors"), rf, ctx)
    assert s.status == "inconclusive"


@settings(max_examples=60, deadline=None)
@given(st.floats(0, 1e6), st.floats(1, 1e6))
def test_staleness_age_rule(age, max_age):
    mf = MetricFrame(series={1: ("samantha_last_sync_timestamp_seconds", {})}, latest={1: (NOW - 1, NOW - age)})
    v = ev.staleness(StalenessGate(name="s", signal="last_sync", max_age=max_age), mf, EvalContext(now=NOW))
    seen_age = NOW - (NOW - age)  # the gate sees the stored timestamp, not `age` itself
    assert v.status == ("pass" if seen_age <= max_age else "fail")


@settings(max_examples=60, deadline=None)
@given(st.floats(-1e6, 1e6), st.floats(0, 1e6))
def test_staleness_expiry_rule(left, need):
    mf = MetricFrame(series={1: ("cube_bundle_expires_timestamp_seconds", {})}, latest={1: (NOW, NOW + left)})
    v = ev.staleness(StalenessGate(name="e", signal="bundle_expiry", min_remaining=need), mf, EvalContext(now=NOW))
    seen_left = (NOW + left) - NOW
    assert v.status == ("fail" if seen_left < need else "pass")
