"""Every gate kind evaluated over a real DuckDB store (TelemetryStore) on a simulated clock."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from samantha.core.clock import SimClock
from samantha.gates.engine import GateEngine, plan
from samantha.gates.evaluate import EvalContext
from samantha.gates.registry import GATE_ADAPTER
from samantha.gates.spec import (
    CompareGate,
    DriftGate,
    JudgeGate,
    SequentialGate,
    StalenessGate,
    ThresholdGate,
)
from tests.gates.recorded import add_metric, add_traffic, open_store

T0 = 1_800_000_000.0


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """10 min of incumbent traffic; a good canary (shadow-scored) from t+300..t+450 under bundle v2,
    a bad canary (3% errors, 1.5x latency, 5% diverging outputs) from t+450..t+600 under bundle v3;
    host metrics; a bundle about to expire; no policy-age value at all."""
    clock = SimClock(T0 + 600)
    store = open_store(tmp_path_factory.mktemp("engine") / "t.duckdb", clock)
    rng = np.random.default_rng(0)
    add_traffic(store, rng, T0, 600, 100, "active", "v1")
    add_traffic(store, rng, T0 + 300, 150, 100, "standby", "v2", shadow=True, divergence_rate=0.0)
    add_traffic(store, rng, T0 + 450, 150, 100, "standby", "v3", shadow=True, error_rate=0.03,
                latency_factor=1.5, divergence_rate=0.05)
    ts = np.arange(T0, T0 + 600, 1.0)
    add_metric(store, "host_memory_used_percent", ts, np.where(ts < T0 + 540, 50.0, 95.0))
    add_metric(store, "input_feature_mean", ts, np.where(ts < T0 + 500, rng.normal(0, 1, ts.size),
                                                         rng.normal(2, 1, ts.size)), {"feature": "x0"})
    add_metric(store, "cube_bundle_expires_timestamp_seconds", [T0], [T0 + 1000])
    add_metric(store, "samantha_last_sync_timestamp_seconds", [T0 + 10], [T0 + 5])
    store.flush()
    yield store, clock
    store.close()


def ev(store, gates, now, **kw):
    return {v.gate: v for v in GateEngine(store).evaluate(gates, now, **kw)}


def test_threshold_pass_fail_and_missing(world):
    store, _ = world
    gates = [ThresholdGate(name="mem", metric="host_memory_used_percent", value=90, window=30),
             ThresholdGate(name="p99", metric="latency_ms", aggregate="p99", value=60, slot="active"),
             ThresholdGate(name="ghost", metric="no_such_metric", value=1),
             ThresholdGate(name="few", metric="latency_ms", value=1e9, window=0.01, slot="active")]
    early = ev(store, gates, T0 + 500)
    assert early["mem"].status == "pass" and early["p99"].status == "pass"
    assert early["ghost"].status == "inconclusive" and "no series" in early["ghost"].reason
    assert early["few"].status == "inconclusive"  # too few samples is never a pass
    late = ev(store, gates, T0 + 600)
    assert late["mem"].status == "fail" and late["mem"].values["observed"] == pytest.approx(95)
    assert late["p99"].samples["n"] > 5000 and late["p99"].window == (T0 + 540, T0 + 600)


def test_compare_and_judges(world):
    store, _ = world
    gates = [CompareGate(name="cmp-err", metric="error_rate", max_increase=0.01),
             CompareGate(name="cmp-lat", metric="latency_ms", aggregate="p50", max_ratio=1.2),
             JudgeGate(name="j-lat", test="latency"), JudgeGate(name="j-err", test="errors"),
             JudgeGate(name="j-div", test="divergence", tolerance=0.01, max_rate=0.01)]
    good = ev(store, gates, T0 + 440, canary_bundle="v2")
    assert all(v.status == "pass" for v in good.values()), {k: v.reason for k, v in good.items()}
    bad = ev(store, gates, T0 + 600, canary_bundle="v3")
    assert {k: v.status for k, v in bad.items()} == {k: "fail" for k in bad}, {k: v.reason for k, v in bad.items()}
    assert bad["j-lat"].values["hl_shift_ms"] == pytest.approx(10, rel=0.3)
    assert bad["j-err"].samples["canary"] > 5000


def test_sequential_one_alpha_from_rollout_start(world):
    store, _ = world
    gates = [SequentialGate(name="s-err", signal="errors", alpha=1e-4),
             SequentialGate(name="s-lat", signal="latency", quantile=0.5, alpha=1e-4),
             SequentialGate(name="s-div", signal="divergence", tolerance=0.01, max_rate=0.002, alpha=1e-4)]
    good = ev(store, gates, T0 + 450, rollout_start=T0 + 300, canary_bundle="v2")
    assert [v.status for v in good.values()] == ["pass"] * 3
    bad = ev(store, gates, T0 + 455, rollout_start=T0 + 450, canary_bundle="v3")
    assert bad["s-lat"].status == "fail" and bad["s-div"].status == "fail"
    assert bad["s-lat"].values["crossed_at"] - (T0 + 450) <= 3.0  # 1.5x latency at 100 rps: seconds
    fresh = ev(store, gates, T0 + 450.5, rollout_start=T0 + 450, canary_bundle="v3")
    assert fresh["s-err"].status == "inconclusive"  # 50 canary rows: no pass yet


def test_drift_and_staleness(world):
    store, _ = world
    gates = [DriftGate(name="drift", metric="input_feature_mean", window=60, baseline_offset=300),
             StalenessGate(name="expiry", signal="bundle_expiry", min_remaining=600),
             StalenessGate(name="sync", signal="last_sync", max_age=3600),
             StalenessGate(name="policy", signal="policy_age", max_age=86400)]
    before = ev(store, gates, T0 + 380)
    assert before["drift"].status == "pass" and before["drift"].values["method"] == "ks"
    assert before["expiry"].status == "pass"
    after = ev(store, gates, T0 + 600)
    assert after["drift"].status == "fail"
    assert after["expiry"].status == "fail" and after["expiry"].values["remaining_s"] == pytest.approx(400)
    assert after["sync"].status == "pass" and after["sync"].values["age_s"] == pytest.approx(595)
    assert after["policy"].status == "inconclusive"  # a missing metric is inconclusive


def test_one_pass_shares_fetches(world):
    store, _ = world
    gates = [ThresholdGate(name=f"t{i}", metric="latency_ms", value=1e9, window=30 + i) for i in range(20)]
    gates += [DriftGate(name="d", metric="input_feature_mean", window=60, baseline_offset=120)]
    p = plan(gates, EvalContext(now=T0 + 600))
    assert p.request_start == T0 + 600 - 49 and p.windowed == {"input_feature_mean": T0 + 600 - 180}

    calls = []

    class Counting:
        def read_arrow(self, sql, params=None):
            calls.append(sql)
            return store.read_arrow(sql, params)

    GateEngine(Counting()).evaluate(gates, T0 + 600)
    assert sum("FROM requests" in c for c in calls) == 1 and sum("FROM samples" in c for c in calls) == 1


def test_incremental_passes_match_a_fresh_engine(world):
    store, _ = world
    gates = [SequentialGate(name="s-err", signal="errors", alpha=1e-3),
             SequentialGate(name="s-lat", signal="latency", quantile=0.5, alpha=1e-3, channel="shadow",
                            null_odds=1.5)]
    others = [DriftGate(name="drift", metric="input_feature_mean", window=30, baseline_offset=60),
              ThresholdGate(name="mem", metric="host_memory_used_percent", aggregate="max", value=90, window=20),
              StalenessGate(name="expiry", signal="bundle_expiry", min_remaining=600),
              ThresholdGate(name="p99", metric="latency_ms", aggregate="p99", value=60, slot="standby",
                            include_shadow=True, window=15)]
    live = GateEngine(store)
    for now in np.arange(T0 + 455, T0 + 600, 7.3):
        a = {v.gate: v for v in live.evaluate(gates + others, now, rollout_start=T0 + 450, canary_bundle="v3")}
        b = ev(store, gates + others, now, rollout_start=T0 + 450, canary_bundle="v3")
        for k in gates:
            assert a[k.name].values["log_m"] == pytest.approx(b[k.name].values["log_m"]), (k.name, now)
        for k in others:
            assert (a[k.name].status, a[k.name].values, a[k.name].samples) == \
                (b[k.name].status, b[k.name].values, b[k.name].samples), (k.name, now)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(window=st.floats(0.001, 0.5), value=st.floats(-1e9, 1e9), op=st.sampled_from(["<", "<=", ">", ">="]))
def test_too_few_samples_is_never_pass(world, window, value, op):
    store, _ = world
    g = GATE_ADAPTER.validate_python({"kind": "threshold", "name": "x", "metric": "latency_ms", "op": op,
                                      "value": value, "window": window, "slot": "active"})
    (v,) = GateEngine(store).evaluate([g], T0 + 123.4)
    assert v.status == "inconclusive" and v.samples["n"] < 50


def test_active_gates_are_bundle_aware_across_a_flip(tmp_path):
    """A failing bundle's requests on the active slot, then a flip to a healthy one: from the flip on,
    a gate over the active role judges only the new bundle's requests (no re-firing on old errors)."""
    store = open_store(tmp_path / "flip.duckdb", SimClock(T0 + 20))
    rng = np.random.default_rng(1)
    add_traffic(store, rng, T0, 10, 200, "active", "bad", error_rate=0.5)
    add_traffic(store, rng, T0 + 10, 10, 200, "active", "good", error_rate=0.0)
    add_traffic(store, rng, T0 + 10, 1, 200, "active", "bad", error_rate=1.0)  # in flight at the flip
    store.flush()
    gate = [ThresholdGate(name="err", metric="error_rate", value=0.2, slot="active", window=5, min_samples=50)]
    try:
        blind = ev(store, gate, T0 + 12)["err"]
        assert blind.status == "fail" and blind.window[0] == T0 + 7  # the old bundle's errors in the window
        aware = ev(store, gate, T0 + 12, active_bundle="good", active_since=T0 + 10)["err"]
        assert aware.window == (T0 + 10, T0 + 12)  # the window starts at the flip
        assert aware.status == "pass" and aware.values["observed"] == 0.0  # the stragglers of "bad" excluded
        early = ev(store, gate, T0 + 10.1, active_bundle="good", active_since=T0 + 10)["err"]
        assert early.status == "inconclusive"  # too few of the new bundle's requests yet: never a fail
    finally:
        store.close()
