"""Server gates (Triton's own counters) on hand-built windows: counter increases with resets, ratios per slot
role, the active window cut at the last flip. The real-Triton test is tests/cube/test_triton_metrics.py."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from samantha.gates import statistics as stats
from samantha.gates.evaluate import EvalContext, server
from samantha.gates.registry import GATE_ADAPTER, GateRegistry
from samantha.gates.spec import TRITON_FAILURE, TRITON_QUEUE_US, TRITON_SUCCESS, ServerGate, judges_canary
from samantha.gates.windows import MetricFrame

counts = st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=30)


def _monotone(steps: list[int], start: int = 0) -> list[float]:
    return [float(x) for x in np.cumsum([start, *steps])]


@given(counts, st.integers(min_value=0, max_value=10**6))
def test_a_counter_that_only_grows_increases_by_last_minus_first(steps, start):
    v = np.array(_monotone(steps, start))
    assert stats.counter_increase(v) == v[-1] - v[0]


@given(st.data(), counts, st.integers(min_value=0, max_value=10**6), st.integers(min_value=0, max_value=5))
def test_each_reset_counts_again_from_zero(data, first, offset, resets):
    """A counter restarted `resets` times (the server restarted or reloaded the model): the first run counts from
    its first sample; each later run's first sample (requests served before the scrape) is below the value
    before the restart, and everything it holds is new."""
    values = _monotone(first, offset)
    expected = values[-1] - values[0]
    for _ in range(resets):
        if values[-1] == 0:
            break  # a restart from 0 to 0 shows nothing to count
        head = data.draw(st.integers(min_value=0, max_value=int(values[-1]) - 1))
        seg = _monotone(data.draw(counts), head)
        expected += seg[-1]
        values += seg
    got = stats.counter_increase(np.array(values))
    assert got == expected and got >= 0


def test_fewer_than_two_samples_is_no_increase():
    assert stats.counter_increase(np.array([])) == 0.0 and stats.counter_increase(np.array([7.0])) == 0.0


def _frame(series: list[tuple[str, dict[str, str], list[float], list[float]]]) -> MetricFrame:
    mf = MetricFrame()
    for sid, (metric, labels, ts, vals) in enumerate(series):
        mf.series[sid] = (metric, labels)
        mf.ts[sid], mf.values[sid] = np.array(ts, dtype=float), np.array(vals, dtype=float)
    return mf


A = {"slot": "A", "role": "active", "bundle": "b1", "model": "sensor", "version": "1"}
B = {"slot": "B", "role": "standby", "bundle": "b2", "model": "sensor", "version": "1"}
FAIL = ServerGate(name="f", signal="failure_ratio", limit=0.2, window=60, min_samples=10)


def test_failure_ratio_per_slot_role_over_reasons_with_a_reset():
    ts = [10.0, 20.0, 30.0, 40.0]
    mf = _frame([
        (TRITON_SUCCESS, A, ts, [100, 130, 5, 25]),  # Triton restarted between 20 and 30: +30, +5, +20
        (TRITON_FAILURE, {**A, "reason": "BACKEND"}, ts, [0, 0, 4, 14]),  # +0, +4, +10
        (TRITON_FAILURE, {**A, "reason": "REJECTED"}, ts, [1, 1, 0, 0]),
        (TRITON_SUCCESS, B, ts, [0, 50, 100, 150]),
        (TRITON_FAILURE, {**B, "reason": "BACKEND"}, ts, [0, 0, 0, 0]),
    ])
    v = server(FAIL, mf, EvalContext(now=45.0))
    assert v.status == "fail" and v.values["numerator"] == 14 and v.values["denominator"] == 69
    assert v.values["observed"] == pytest.approx(14 / 69)
    canary = server(FAIL.model_copy(update={"slot": "standby"}), mf, EvalContext(now=45.0, canary_bundle="b2"))
    assert canary.status == "pass" and canary.values["denominator"] == 150
    # another bundle on the standby than the canary asked for: none of its series are the canary's
    other = server(FAIL.model_copy(update={"slot": "standby"}), mf, EvalContext(now=45.0, canary_bundle="b9"))
    assert other.status == "inconclusive" and "no nv_inference_request_success_total series" in other.reason


def test_active_window_starts_at_the_last_flip_and_too_few_requests_is_inconclusive():
    ts = [10.0, 20.0, 30.0, 40.0]
    mf = _frame([(TRITON_SUCCESS, A, ts, [0, 10, 20, 25]), (TRITON_FAILURE, {**A, "reason": "BACKEND"}, ts,
                                                              [0, 30, 30, 30])])
    assert server(FAIL, mf, EvalContext(now=45.0)).status == "fail"
    after_flip = server(FAIL, mf, EvalContext(now=45.0, active_since=25.0))  # samples 30 and 40 only: +5, +0
    assert after_flip.status == "inconclusive" and "5 requests in the window < 10" in after_flip.reason


def test_queue_time_per_successful_request_and_label_filter():
    ts = [10.0, 20.0]
    mf = _frame([(TRITON_SUCCESS, A, ts, [0, 100]), (TRITON_QUEUE_US, A, ts, [0, 8_000]),
                 (TRITON_SUCCESS, {**A, "model": "other"}, ts, [0, 100]),
                 (TRITON_QUEUE_US, {**A, "model": "other"}, ts, [0, 900_000])])
    g = ServerGate(name="q", signal="queue_us", limit=50, labels={"model": "sensor"}, window=60)
    v = server(g, mf, EvalContext(now=30.0))
    assert v.status == "fail" and v.values["observed"] == 80.0 and "us per successful request" in v.reason
    assert server(g.model_copy(update={"labels": {}}), mf, EvalContext(now=30.0)).values["observed"] == 4540.0


def test_spec_and_builtins():
    g = GATE_ADAPTER.validate_python({"kind": "server", "name": "s", "signal": "queue_us", "limit": 100})
    assert g.metrics() == (TRITON_QUEUE_US, TRITON_SUCCESS) and g.slot == "active" and not judges_canary(g)
    with pytest.raises(ValueError, match="limit"):
        GATE_ADAPTER.validate_python({"kind": "server", "name": "s", "signal": "failure_ratio"})
    with pytest.raises(ValueError, match="signal"):
        GATE_ADAPTER.validate_python({"kind": "server", "name": "s", "signal": "gpu", "limit": 1})
    reg = GateRegistry.with_builtins()
    assert judges_canary(reg.get("triton-canary-failure-ratio")) and not judges_canary(
        reg.get("triton-active-failure-ratio"))


def test_triage_reads_a_server_verdict_as_errors_or_latency():
    from samantha.loop.llm_triage import _verdict_kind

    assert _verdict_kind({"gate": "triton-active-failure-ratio", "values": {"signal": "failure_ratio"}}) == "error_rate"
    assert _verdict_kind({"gate": "triton-canary-queue-time", "values": {"signal": "queue_us"}}) == "latency"


def test_canary_queue_regression_against_the_incumbents_server():
    ts = [10.0, 20.0]
    gate = GateRegistry.with_builtins().get("triton-canary-queue-time")  # over 1 ms and twice the incumbent's

    def frame(canary_us: float, incumbent_us: float, incumbent_n: float = 100) -> MetricFrame:
        return _frame([(TRITON_SUCCESS, B, ts, [0, 100]), (TRITON_QUEUE_US, B, ts, [0, 100 * canary_us]),
                       (TRITON_SUCCESS, A, ts, [0, incumbent_n]),
                       (TRITON_QUEUE_US, A, ts, [0, incumbent_n * incumbent_us])])

    ctx = EvalContext(now=30.0, canary_bundle="b2")
    v = server(gate, frame(5_000, 1_000), ctx)
    assert v.status == "fail" and v.values["ratio"] == 5.0 and "x5 the incumbent's 1000" in v.reason
    assert server(gate, frame(5_000, 4_000), ctx).status == "pass"  # slower than 1 ms, but so is the incumbent
    assert server(gate, frame(900, 100), ctx).status == "pass"  # 9x, but under the 1 ms that matters
    thin = server(gate, frame(5_000, 1_000, incumbent_n=5), ctx)
    assert thin.status == "inconclusive" and thin.reason.startswith("incumbent: 5 successes")
    with pytest.raises(ValueError, match="max_ratio compares the standby"):
        ServerGate(name="x", signal="queue_us", limit=1, max_ratio=2)


def test_a_series_created_since_the_last_pass_is_seen_at_once(config):
    """After a flip the new active's samples carry a new role label, so new series: the engine's carried series
    list is read again as soon as the store created one, not only every 10 s of data time (a real DuckDB file)."""
    from samantha.core.clock import SimClock
    from samantha.gates.engine import GateEngine
    from samantha.telemetry import TelemetryStore

    clock = SimClock(1_800_000_000.0)
    with TelemetryStore.open(config, clock) as store:
        engine = GateEngine(store, clock)
        t0 = clock.time()
        old = {**A, "role": "standby"}
        store.ingest_samples([{"metric": m, "labels": {**old, **extra}, "ts": t0 + t, "value": 10.0 * t}
                              for t in (1.0, 2.0) for m, extra in ((TRITON_SUCCESS, {}),
                                                                   (TRITON_FAILURE, {"reason": "BACKEND"}))])
        store.flush()
        first = engine.evaluate([FAIL], t0 + 2.5)[0]
        assert first.status == "inconclusive" and "no nv_inference_request_success_total series" in first.reason
        store.ingest_samples([{"metric": m, "labels": {**A, **extra}, "ts": t0 + t, "value": v * t}
                              for t in (3.0, 4.0) for m, extra, v in ((TRITON_SUCCESS, {}, 10.0),
                                                                       (TRITON_FAILURE, {"reason": "BACKEND"}, 20.0))])
        store.flush()
        v = engine.evaluate([FAIL], t0 + 4.5)[0]  # 2 s of data time later
        assert v.status == "fail" and v.values["denominator"] == 30, v.reason


def test_the_pending_request_gauge_through_a_threshold_gate():
    from samantha.gates.evaluate import threshold
    from samantha.gates.spec import ThresholdGate

    mf = _frame([("nv_inference_pending_request_count", A, [10.0, 20.0], [3, 9]),
                 ("nv_inference_pending_request_count", B, [10.0, 20.0], [0, 0])])
    g = GATE_ADAPTER.validate_python({"kind": "threshold", "name": "backlog", "metric": "nv_inference_pending_request_count",
                                      "aggregate": "max", "op": "<=", "value": 8, "labels": {"role": "active"}})
    assert isinstance(g, ThresholdGate)
    v = threshold(g, None, mf, EvalContext(now=30.0))
    assert v.status == "fail" and v.values["observed"] == 9.0
