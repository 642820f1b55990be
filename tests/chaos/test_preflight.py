"""Pre-flight: every check on its own, then >= 10,000 generated proposals (adversarial ones included)."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from samantha.chaos.fault_kinds import KINDS, PROTECTED_TARGETS, preflight_input
from samantha.core.config import ChaosLimits
from samantha.core.proposal import Proposal
from samantha.harness.chaos_oracle import beyond_policy, random_input, random_proposal
from samantha.kernel.policy import CubeSnapshot, SlotState
from samantha.kernel.preflight import (
    GateStatus,
    HostSnapshot,
    check,
    in_window,
    may_run_approved,
)

B = "b" * 64
GOOD_CUBE = CubeSnapshot(active=SlotState(bundle="a" * 64, healthy=True, loaded=True, verified=True),
                         standby=SlotState(bundle=B, healthy=True, loaded=True, verified=True))
GATES = [GateStatus(name="active-error-rate", status="pass"), GateStatus(name="latency-slo-p99", status="pass")]


def inp(kind: str = "latency", target: str = "standby", params: dict | None = None, **kw):
    base = dict(proposal=Proposal(kind=kind, target=target, params={"latency_ms": 200} if params is None else params),
                now=1_800_000_000.0, gates=GATES, hypothesis_gates=["active-error-rate"], error_budget_remaining=0.9,
                host=HostSnapshot(cpu_count=2, cpu_used_ratio=0.2, mem_available_mb=4000, disk_free_mb=50_000),
                cube=GOOD_CUBE, running_experiments=0, revert_tested=frozenset(KINDS))
    base.update(kw)
    return preflight_input(**base)


def codes(r) -> set[str]:
    return {x.code for x in r.reasons}


def test_standby_latency_is_sanctioned():
    r = check(inp())
    assert r.verdict == "sanctioned", r.explain()
    assert r.blast is not None and r.blast.role == "standby" and r.blast.live_share == 0.0


@pytest.mark.parametrize("kind,params", [("kill_slot", {}), ("sigstop", {"duration_s": 2.0})])
def test_stopping_the_active_slot_escalates(kind, params):
    r = check(inp(kind, "active", params))
    assert r.verdict == "escalate" and "active-slot-down" in codes(r)


def test_active_share_small_is_sanctioned_large_escalates():
    assert check(inp("http_error", "active", {"toxicity": 0.05})).verdict == "sanctioned"
    r = check(inp("http_error", "active", {"toxicity": 0.06}))
    assert r.verdict == "escalate" and "active-share" in codes(r)


@pytest.mark.parametrize("target", sorted(PROTECTED_TARGETS))
def test_protected_targets_are_rejected(target):
    r = check(inp("sigstop", target, {}))
    assert r.verdict == "reject" and "protected-target" in codes(r)


@pytest.mark.parametrize("params,field", [({"latency_ms": 10_001}, "params.latency_ms"),
                                          ({"latency_ms": float("nan")}, "params.latency_ms"),
                                          ({"latency_ms": 200, "path": "/x"}, "params.path"),
                                          ({"duration_s": -1}, "params.duration_s")])
def test_parameters_outside_ranges_are_rejected_naming_the_field(params, field):
    r = check(inp(params=params))
    assert r.verdict == "reject"
    assert any(x.code == "not-in-catalog" and x.message.startswith(field) for x in r.reasons), r.explain()


def test_unknown_kind_and_wrong_target_are_rejected():
    assert "not-in-catalog" in codes(check(inp("rm_rf", "host", {})))
    assert "bad-target" in codes(check(inp("cpu_burn", "active", {})))


def test_every_reason_is_reported_not_only_the_first():
    r = check(inp(gates=[GateStatus(name="active-error-rate", status="fail")], error_budget_remaining=0.1,
                  running_experiments=1))
    assert {"gate-failing", "error-budget", "concurrent", "hypothesis-blind"} <= codes(r)


def test_policy_kernel_rules_apply():
    safe = GOOD_CUBE.model_copy(update={"safe_mode": True})
    r = check(inp(cube=safe))
    assert r.verdict == "reject" and "policy:safe-mode-no-chaos" in codes(r)
    rollout = GOOD_CUBE.model_copy(update={"rollout_in_progress": True})
    assert "policy:no-chaos-during-rollout" in codes(check(inp(cube=rollout)))


def test_error_budget_unknown_escalates_exhausted_rejects():
    assert "error-budget-unknown" in codes(check(inp(error_budget_remaining=None)))
    assert check(inp(error_budget_remaining=0.0)).verdict == "reject"


def test_resources_headroom_and_capacity():
    host = HostSnapshot(cpu_count=2, cpu_used_ratio=0.5, mem_available_mb=1000, disk_free_mb=2000)
    assert check(inp("cpu_burn", "host", {"cores": 0.4}, host=host)).verdict == "sanctioned"
    assert "cpu-headroom" in codes(check(inp("cpu_burn", "host", {"cores": 0.6}, host=host)))
    assert "cpu-capacity" in codes(check(inp("cpu_burn", "host", {"cores": 3.0}, host=host)))
    assert "memory-headroom" in codes(check(inp("memory_hog", "host", {"mb": 800}, host=host)))
    assert "memory-capacity" in codes(check(inp("memory_hog", "host", {"mb": 2000}, host=host)))
    assert "disk-headroom" in codes(check(inp("disk_pressure", "host", {"mb": 1600}, host=host)))
    assert check(inp("disk_pressure", "host", {"mb": 1400}, host=host)).verdict == "sanctioned"


def test_revert_untested_and_duration_escalate():
    assert "revert-untested" in codes(check(inp(revert_tested=frozenset())))
    assert "duration" in codes(check(inp(params={"latency_ms": 200, "duration_s": 300})))


def test_standby_with_live_traffic_and_empty_standby():
    live = GOOD_CUBE.model_copy(update={"weights": {"active": 0.75, "standby": 0.25}})
    assert "live-share" in codes(check(inp(cube=live)))
    empty = GOOD_CUBE.model_copy(update={"standby": SlotState()})
    assert "standby-empty" in codes(check(inp(cube=empty)))
    assert "no-fallback" in codes(check(inp("http_error", "active", {"toxicity": 0.01}, cube=empty)))


def test_rollback_drill_needs_serviceable_standby_and_rate():
    assert check(inp("rollback_drill", "cube", {})).verdict == "sanctioned"
    sick = GOOD_CUBE.model_copy(update={"standby": SlotState(bundle=B, loaded=True, verified=True)})
    assert "drill-standby" in codes(check(inp("rollback_drill", "cube", {}, cube=sick)))
    assert "drill-rate" in codes(check(inp("rollback_drill", "cube", {}, recent_drills=[1_800_000_000.0 - 60])))


def test_maintenance_window():
    lim = ChaosLimits(maintenance_windows=["22:00-04:00"])
    assert in_window(22 * 3600 + 5, lim.maintenance_windows) and in_window(3 * 3600, lim.maintenance_windows)
    assert not in_window(12 * 3600, lim.maintenance_windows)
    r = check(inp(now=1_800_000_000.0 - (1_800_000_000 % 86400) + 12 * 3600, limits=lim))
    assert "maintenance-window" in codes(r)


def test_approval_waives_only_the_approved_escalations():
    r = check(inp("kill_slot", "active", {}))
    approved = {x.code for x in r.reasons}
    assert may_run_approved(r, approved)
    sick = GOOD_CUBE.model_copy(update={"standby": SlotState(bundle=B, loaded=True, verified=True)})
    later = check(inp("kill_slot", "active", {}, cube=sick))
    assert not may_run_approved(later, approved)  # a new concern (no fallback) goes back to a human
    failing = check(inp("kill_slot", "active", {}, gates=[GateStatus(name="active-error-rate", status="fail")]))
    assert not may_run_approved(failing, approved | {"gate-failing"})  # reject reasons are never waived


BATCH = 20


@settings(max_examples=500, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_property_nothing_beyond_policy_is_sanctioned(seed: int):
    """500 examples x 20 = 10,000 generated proposals (NaN/inf/negative/huge/wrong-typed parameters, protected
    targets, unknown kinds, unhealthy Cubes): pre-flight never sanctions what the independent oracle calls
    beyond policy, and every refusal says why."""
    rng = random.Random(seed)
    for _ in range(BATCH):
        i = random_input(rng, random_proposal(rng))
        r = check(i)
        if r.verdict == "sanctioned":
            assert beyond_policy(i) == [], (i.model_dump(), r.explain())
        else:
            assert r.reasons


def test_generator_reaches_every_verdict_and_agrees_with_the_oracle():
    rng, seen = random.Random(11), {"sanctioned": 0, "escalate": 0, "reject": 0}
    for _ in range(3000):
        i = random_input(rng, random_proposal(rng))
        r = check(i)
        seen[r.verdict] += 1
        assert (r.verdict == "sanctioned") == (beyond_policy(i) == []), (i.model_dump(), r.explain())
    assert min(seen.values()) > 200, seen


@settings(max_examples=1_000, deadline=None, suppress_health_check=list(HealthCheck))
@given(latency=st.one_of(st.integers(), st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.text()),
       toxicity=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers()),
       target=st.sampled_from(["active", "standby"]))
def test_property_network_parameters(latency, toxicity, target):
    i = inp("latency", target, {"latency_ms": latency, "toxicity": toxicity})
    r = check(i)
    if r.verdict == "sanctioned":
        assert beyond_policy(i) == []
        assert isinstance(latency, int) and not isinstance(latency, bool) and 1 <= latency <= 10_000
        assert 0 < toxicity <= (1.0 if target == "standby" else 0.05)
