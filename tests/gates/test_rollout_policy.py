"""Rollout policy data model and the step judge, over a real store."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from samantha.core.clock import SimClock
from samantha.gates.engine import GateEngine
from samantha.gates.registry import GateRegistry
from samantha.gates.rollout_policy import RolloutPolicy, RolloutStep, judge_step
from samantha.gates.spec import SequentialGate
from tests.gates.recorded import add_traffic, open_store

T0 = 1_800_000_000.0


def test_defaults_and_validation():
    p = RolloutPolicy()
    assert [s.weight for s in p.steps] == [1, 5, 25, 50, 100] and p.shadow.enabled and p.soak == 300
    assert [a.action for a in p.on_failure] == ["abort_rollout", "quarantine", "alert"]
    with pytest.raises(ValidationError, match="strictly increase"):
        RolloutPolicy(steps=[RolloutStep(weight=5), RolloutStep(weight=1), RolloutStep(weight=100)])
    with pytest.raises(ValidationError, match="last step must be 100"):
        RolloutPolicy(steps=[RolloutStep(weight=5)])


def test_alpha_is_split_once_over_every_sequential_gate():
    reg = GateRegistry.with_builtins()
    extra = {"kind": "sequential", "name": "step-extra", "signal": "errors"}
    p = RolloutPolicy(alpha=0.002, steps=[RolloutStep(weight=10, gates=[extra]), RolloutStep(weight=100)])
    seq0 = [g for g in p.step_gates(0, reg) if isinstance(g, SequentialGate)]
    seq1 = [g for g in p.step_gates(1, reg) if isinstance(g, SequentialGate)]
    n = len(seq0)  # the policy's 6 + the step's 1
    assert n == 7 and len(seq1) == 6
    assert sum(g.alpha for g in seq0) == pytest.approx(0.002)
    assert all(g.alpha == pytest.approx(0.002 / 7) for g in seq0 + seq1)


@pytest.fixture
def rollout(tmp_path):
    clock = SimClock(T0 + 400)
    store = open_store(tmp_path / "r.duckdb", clock)
    rng = np.random.default_rng(1)
    add_traffic(store, rng, T0, 400, 200, "active", "v1", error_rate=0.0)
    add_traffic(store, rng, T0 + 200, 100, 200, "standby", "good", shadow=True, error_rate=0.0, divergence_rate=0.0)
    add_traffic(store, rng, T0 + 300, 100, 200, "standby", "bad", shadow=True, error_rate=0.2, divergence_rate=0.0)
    store.flush()
    yield store
    store.close()


def test_judge_step_shadow_phase(rollout):
    engine = GateEngine(rollout)
    p = RolloutPolicy()
    early = judge_step(engine, p, "shadow", T0 + 205, rollout_start=T0 + 200, step_start=T0 + 200, canary_bundle="good")
    assert early.status == "inconclusive" and "< 20s in step" in early.reason
    ok = judge_step(engine, p, "shadow", T0 + 240, rollout_start=T0 + 200, step_start=T0 + 200, canary_bundle="good")
    assert ok.status == "pass", ok.reason
    assert ok.canary_samples > 2000 and not ok.actions
    bad = judge_step(engine, p, "shadow", T0 + 301, rollout_start=T0 + 300, step_start=T0 + 300, canary_bundle="bad")
    assert bad.status == "fail" and "canary-errors" in bad.reason
    assert [a.action for a in bad.actions] == ["abort_rollout", "quarantine", "alert"]
    failing = [v for v in bad.verdicts if v.status == "fail"]
    assert failing and failing[0].values["crossed_at"] - (T0 + 300) <= 1.0


def test_server_gates_in_a_rollout_only_fail_a_step(rollout):
    """The canary's Triton counters: none scraped, the gate is inconclusive and the step still passes; failures
    counted by the canary's Triton fail it (samples as the scraper labels them: slot, role, bundle)."""
    from samantha.gates.rollout_policy import DEFAULT_GATES
    from samantha.gates.spec import TRITON_FAILURE, TRITON_SUCCESS

    engine = GateEngine(rollout)
    p = RolloutPolicy(gates=[*DEFAULT_GATES, "triton-canary-failure-ratio"])
    ok = judge_step(engine, p, "shadow", T0 + 240, rollout_start=T0 + 200, step_start=T0 + 200, canary_bundle="good")
    server = next(v for v in ok.verdicts if v.gate == "triton-canary-failure-ratio")
    assert server.status == "inconclusive" and ok.status == "pass", ok.reason
    labels = {"slot": "B", "role": "standby", "bundle": "bad", "model": "sensor", "version": "1"}
    rollout.ingest_samples([{"metric": m, "labels": {**labels, **extra}, "ts": T0 + 300 + t, "value": v * t}
                            for t in (1.0, 2.0) for m, extra, v in ((TRITON_SUCCESS, {}, 100.0),
                                                                    (TRITON_FAILURE, {"reason": "BACKEND"}, 20.0))])
    rollout.flush()
    bad = judge_step(engine, p, "shadow", T0 + 303, rollout_start=T0 + 300, step_start=T0 + 300, canary_bundle="bad")
    server = next(v for v in bad.verdicts if v.gate == "triton-canary-failure-ratio")
    assert server.status == "fail" and server.values["observed"] == pytest.approx(20 / 120)
    assert bad.status == "fail" and "triton-canary-failure-ratio" in bad.reason
