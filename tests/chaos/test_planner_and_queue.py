"""Planner logic (pure) and the approval queue's own rules (real SQLite + LangGraph, a stand-in service)."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from samantha.chaos import planner
from samantha.chaos.approvals import ApprovalQueue, make_decision
from samantha.chaos.fault_kinds import preflight_input
from samantha.core.config import SamanthaConfig
from samantha.core.operators import add_operator
from samantha.core.proposal import Proposal
from samantha.core.signing import KeyPair
from samantha.kernel.policy import CubeSnapshot, SlotState
from samantha.kernel.preflight import GateStatus, HostSnapshot, check
from samantha.llm.chaos_planning import ChaosAdvice
from samantha.llm.chaos_planning import Proposal as LlmProposal


def test_every_slot_path_gets_a_failure_and_a_latency_under_the_timeout():
    props = planner.generate(upstream_timeout_s=5.0)
    for role in ("active", "standby"):
        kinds = {(p.kind, p.params.get("latency_ms")) for p in props if p.target == role}
        assert ("http_error", None) in kinds and ("latency", 4500) in kinds
    assert {p.kind for p in props} >= {"input_noise", "rollback_drill", "kill_slot"}


def test_ranking_is_deterministic_values_staleness_and_dedups_history():
    now = 1_800_000_000.0
    props = planner.generate(5.0)
    fresh = {("latency", "standby"): now - 60}
    a = planner.rank([planner.score(p, now=now, last_run=fresh, incident_causes=[]) for p in props])
    b = planner.rank([planner.score(p, now=now, last_run=fresh, incident_causes=[]) for p in reversed(props)])
    assert [p.key for p in a] == [p.key for p in b]
    lat = [p for p in a if p.kind == "latency" and p.target == "standby"]
    other = [p for p in a if p.kind == "http_error" and p.target == "standby"]
    assert lat[0].value < other[0].value  # exercised a minute ago: less worth running now
    net = planner.score(other[0], now=now, last_run={}, incident_causes=["network_fault"])
    assert net.value > planner.score(other[0], now=now, last_run={}, incident_causes=[]).value
    kept, dropped = planner.dedup(a + a[:2], {a[3].key})
    assert len(kept) == len(a) - 1 and len(dropped) == 3


def test_llm_proposals_outside_the_catalog_are_dropped_and_inside_get_ranged_parameters():
    advice = ChaosAdvice(proposals=[
        LlmProposal(fault="latency", target="standby", intensity="high", hypothesis="the fallback slows down"),
        LlmProposal(fault="cpu_burn", target="active", intensity="low", hypothesis="wrong target for a cpu burn"),
        LlmProposal(fault="rm_rf", target="host", intensity="low", hypothesis="not a catalog entry at all"),
    ])
    kept, dropped = planner.from_llm(advice)
    assert [(p.kind, p.target, p.source) for p in kept] == [("latency", "standby", "llm")]
    assert kept[0].params["latency_ms"] == 1000 and kept[0].rationale == "the fallback slows down"
    assert len(dropped) == 2
    keys = [p.key for p in planner.generate(5.0)]
    reordered = planner.apply_llm_ranking(planner.generate(5.0), [keys[3], "prop-unknown", keys[0]])
    assert [p.key for p in reordered][:2] == [keys[3], keys[0]]


class _Service:
    """Stands in for ChaosService: pre-flight escalates a kill of the active slot; execution is recorded."""

    def __init__(self, config: SamanthaConfig) -> None:
        self.config, self.cc, self.clock = config, config.chaos, SimpleNamespace(time=time.time)
        self.executed: list[str] = []

    def preflight(self, p, guards=()):
        good = SlotState(bundle="a" * 64, healthy=True, loaded=True, verified=True)
        inp = preflight_input(proposal=p, now=time.time(), gates=[GateStatus(name="g", status="pass")],
                             hypothesis_gates=["g"], error_budget_remaining=1.0,
                             host=HostSnapshot(cpu_count=2, cpu_used_ratio=0, mem_available_mb=4000, disk_free_mb=9e4),
                             cube=CubeSnapshot(active=good, standby=good.model_copy(update={"bundle": "b" * 64})),
                             revert_tested=frozenset({"kill_slot"}))
        return check(inp), inp

    def execute_approved(self, p, codes, aid, **kw):
        self.executed.append(aid)
        return {"outcome": "completed"}


@pytest.mark.timeout(60)
def test_undecided_items_expire_and_a_late_approval_is_refused(tmp_path):
    cfg = SamanthaConfig.model_validate({"data_dir": str(tmp_path), "chaos": {"approval_ttl_s": 0.5}})
    svc = _Service(cfg)
    q = ApprovalQueue(svc)
    try:
        out = q.submit(Proposal(kind="kill_slot", target="active", params={}))
        assert out["outcome"] == "escalated"
        aid = out["approval"]["id"]
        key = KeyPair.generate()
        add_operator(tmp_path / "operators.yaml", "alice", "approver", key.public, time.time() + 3600)
        time.sleep(0.7)
        assert [a["status"] for a in q.list()] == ["expired"]
        assert not q.graph.waiting(aid)  # the thread ended as expired
        doc = make_decision(aid, "approve", out["approval"]["proposal"]["key"], key, operator="alice", now=time.time())
        with pytest.raises(Exception) as e:
            q.decide(aid, doc, expect="approve")
        assert getattr(e.value, "code", None) == "not_pending"
        assert svc.executed == []
    finally:
        q.close()
