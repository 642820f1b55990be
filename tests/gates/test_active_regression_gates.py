"""The active slot's own latency regressions: CUSUM against its past (with a relevance margin), the
standby's probes against the active's past, and the active against the standby's probes. Pure logic on
synthetic request frames."""

from __future__ import annotations

import numpy as np

from samantha.gates import evaluate as ev
from samantha.gates.registry import builtin_gates
from samantha.gates.spec import judges_canary
from samantha.gates.windows import RequestFrame

NOW = 1000.0
GATES = {g.name: g for g in builtin_gates()}


def frame(active_ms, probe_ms, *, slow_from: float, rps: float = 200.0, probe_rps: float = 20.0,
          seed: int = 0) -> RequestFrame:
    """Active live rows and standby probe rows over the last 400 s; latencies shift at `slow_from`."""
    rng = np.random.default_rng(seed)
    parts = []
    for rate, standby, shadow, slow in ((rps, False, False, active_ms), (probe_rps, True, True, probe_ms)):
        ts = np.sort(rng.uniform(NOW - 400, NOW, int(400 * rate)))
        lat = rng.lognormal(0.0, 0.3, ts.size) + np.where(ts >= slow_from, slow, 0.0)
        parts.append((ts, np.full(ts.size, standby), np.full(ts.size, shadow), lat))
    ts = np.concatenate([p[0] for p in parts])
    o = np.argsort(ts, kind="stable")
    cat = [np.concatenate([p[i] for p in parts])[o] for i in range(4)]
    n = ts.size
    return RequestFrame(NOW - 400, NOW, cat[0], cat[1].astype(bool), cat[2].astype(bool), np.ones(n, bool),
                        cat[3], np.full(n, np.nan), None)


def verdicts(rf: RequestFrame) -> dict[str, str]:
    ctx = ev.EvalContext(now=NOW)
    return {name: (ev.compare(GATES[name], rf, ctx) if name == "active-slower-than-standby"
                   else ev.sequential(GATES[name], rf, ctx)).status
            for name in ("active-latency-cusum", "active-slower-than-standby", "standby-probe-latency-cusum")}


def test_quiet_slots_pass_everything() -> None:
    for seed in range(5):
        assert set(verdicts(frame(0.0, 0.0, slow_from=NOW + 1, seed=seed)).values()) == {"pass"}


def test_active_path_slow_for_two_seconds_fails_cusum_and_the_standby_comparison() -> None:
    v = verdicts(frame(100.0, 0.0, slow_from=NOW - 2.0))
    assert v == {"active-latency-cusum": "fail", "active-slower-than-standby": "fail",
                 "standby-probe-latency-cusum": "pass"}


def test_both_paths_slow_is_a_host_slowdown_not_a_flip() -> None:
    v = verdicts(frame(100.0, 100.0, slow_from=NOW - 3.0))
    assert v == {"active-latency-cusum": "fail", "active-slower-than-standby": "pass",
                 "standby-probe-latency-cusum": "fail"}


def test_a_slowdown_below_the_margin_is_not_a_regression() -> None:
    v = verdicts(frame(10.0, 0.0, slow_from=NOW - 10.0))  # +10 ms < the 20 ms margin
    assert v["active-latency-cusum"] == "pass" and v["active-slower-than-standby"] == "pass"


def test_the_cusum_reads_the_active_past_and_the_probe_cusum_the_active_baseline() -> None:
    rf = frame(0.0, 0.0, slow_from=NOW + 1)
    v = ev.sequential(GATES["standby-probe-latency-cusum"], rf, ev.EvalContext(now=NOW))
    assert 500 < v.samples["standby"] < 700 and v.samples["baseline"] > 50_000  # 30 s of probes; 300 s of active live rows
    assert v.values["latency_threshold_ms"] > 20.0  # the baseline median plus the 20 ms margin


def test_active_regression_gates_are_steady_state_gates() -> None:
    for name in ("active-latency-cusum", "active-latency-tail-cusum", "active-slower-than-standby",
                 "standby-probe-latency-cusum"):
        assert not judges_canary(GATES[name]), name
    assert judges_canary(GATES["canary-latency"]) and judges_canary(GATES["canary-errors-fisher"])
