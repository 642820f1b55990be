"""The grey zone: a phase inconclusive for too long holds and asks a human through the real approval queue
(its SQLite file, signed operator decisions); approve advances, deny aborts without quarantine. The rollout
controller runs on a SimClock with an in-memory Cube and a scripted judge. On the real twin:
test_grey_zone_twin.py."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from rich.console import Console

from samantha.chaos.approvals import ApprovalQueue, DecisionRefused, make_decision
from samantha.core.clock import SimClock
from samantha.core.config import SamanthaConfig
from samantha.core.operators import add_operator
from samantha.core.signing import KeyPair
from samantha.gates.rollout_policy import RolloutPolicy
from samantha.rollout.bundle_check import BundleInfo
from samantha.rollout.controller import RolloutController
from samantha.rollout.escalation import ROLLOUT_HOLD_KIND
from samantha.rollout.record import MemoryRolloutStore
from samantha.rollout.view import render
from tests.rollout.fakes import NEW, OLD, FakeCube, MemoryActionLog, ScriptedJudge, verifier

FAR = 4_000_000_000.0
GREY_STEP = 1  # the 5% step never becomes conclusive


@pytest.fixture
def queue(tmp_path: Path):
    cfg = SamanthaConfig.model_validate({"data_dir": str(tmp_path)})
    q = ApprovalQueue(SimpleNamespace(config=cfg, cc=cfg.chaos, clock=SimpleNamespace(time=time.time)))
    yield q
    q.close()


def _operator(tmp_path: Path) -> KeyPair:
    key = KeyPair.generate()
    add_operator(tmp_path / "operators.yaml", "alice", "approver", key.public, time.time() + 3600)
    return key


def make(clock: SimClock, queue: ApprovalQueue | None, status_for=None, *, after_s: float = 5.0):
    cube = FakeCube(clock, {"/b/new": NEW, "/b/old": OLD})
    policy = RolloutPolicy(shadow={"enabled": False},
                           steps=[{"weight": w, "min_samples": 10, "min_duration": 1} for w in (1, 5, 25, 50, 100)],
                           soak=2, grey_zone={"after_s": after_s})
    judge = ScriptedJudge(status_for or (lambda step: "inconclusive" if step == GREY_STEP else "pass"), need_s=1.0)
    ctl = RolloutController(cube, judge, policy, clock,
                            verify=verifier({"new": BundleInfo("/b/new", NEW, "sensor-mlp@2", FAR, "k")}),
                            store=MemoryRolloutStore(), actions=MemoryActionLog(clock), max_step_s=60.0,
                            ask=lambda: queue)
    return ctl, cube


def run(ctl: RolloutController, clock: SimClock, seconds: float, dt: float = 0.25) -> None:
    for _ in range(int(seconds / dt)):
        clock.advance(dt)
        ctl.tick(clock.time())


def held_item(ctl: RolloutController, queue: ApprovalQueue, clock: SimClock) -> dict:
    ctl.start("new", "req-1")
    run(ctl, clock, 10)
    rec = ctl.status().rollout
    assert rec.phase == "step" and rec.step == GREY_STEP and rec.approval_id, rec.decisions[-3:]
    [item] = queue.list("pending")
    assert item["id"] == rec.approval_id and item["proposal"]["kind"] == ROLLOUT_HOLD_KIND
    assert item["proposal"]["params"]["rollout_id"] == rec.id and item["preflight"]["reasons"][0]["message"]
    return item


def test_grey_zone_holds_asks_once_and_an_approval_advances(sim_clock: SimClock, queue: ApprovalQueue,
                                                            tmp_path: Path) -> None:
    ctl, cube = make(sim_clock, queue)
    item = held_item(ctl, queue, sim_clock)
    run(ctl, sim_clock, 100)  # past the stall limit (60 s): held, never stalled, asked once
    assert ctl.status().phase == "step" and cube.weight == 5 and len(queue.list()) == 1
    asks = [d for d in ctl.status().rollout.decisions if d.kind == "ask"]
    assert len(asks) == 1 and "waiting for an operator" in asks[0].detail
    con = Console(record=True, width=200)
    con.print(render(ctl.status()))
    assert f"held in a grey zone: approval {item['id']}" in con.export_text()
    key = _operator(tmp_path)
    doc = make_decision(item["id"], "approve", item["proposal"]["key"], key, operator="alice", now=time.time())
    out = queue.decide(item["id"], doc, expect="approve")
    assert out["approval"]["status"] == "approved"
    run(ctl, sim_clock, 1)
    rec = ctl.status().rollout
    assert rec.step == GREY_STEP + 1 and cube.weight == 25 and rec.approval_id is None
    assert "approved by an operator" in rec.step_verdicts[-1].reason
    run(ctl, sim_clock, 20)
    assert ctl.status().phase == "promoted"


def test_a_denial_aborts_without_quarantine(sim_clock: SimClock, queue: ApprovalQueue, tmp_path: Path) -> None:
    ctl, cube = make(sim_clock, queue)
    item = held_item(ctl, queue, sim_clock)
    key = _operator(tmp_path)
    queue.decide(item["id"], make_decision(item["id"], "deny", item["proposal"]["key"], key, operator="alice",
                                           now=time.time()), expect="deny")
    run(ctl, sim_clock, 1)
    st = ctl.status()
    assert st.phase == "aborted" and "denied by an operator" in st.rollout.reason
    assert cube.weight == 0 and not cube.quarantined and cube.active == "A"
    with pytest.raises(DecisionRefused):  # decided once
        queue.decide(item["id"], make_decision(item["id"], "approve", item["proposal"]["key"], key,
                                               operator="alice", now=time.time()), expect="approve")


def test_conclusive_evidence_withdraws_the_question(sim_clock: SimClock, queue: ApprovalQueue) -> None:
    state = {"grey": True}
    ctl, cube = make(sim_clock, queue, lambda step: "inconclusive" if step == GREY_STEP and state["grey"] else "pass")
    item = held_item(ctl, queue, sim_clock)
    state["grey"] = False
    run(ctl, sim_clock, 1)
    assert ctl.status().rollout.step == GREY_STEP + 1
    assert queue.get(item["id"])["status"] == "refused" and queue.get(item["id"])["result"]["outcome"] == "withdrawn"


def test_a_failing_gate_still_aborts_while_waiting(sim_clock: SimClock, queue: ApprovalQueue) -> None:
    state = {"fail": False}
    ctl, cube = make(sim_clock, queue,
                     lambda step: ("fail" if state["fail"] else "inconclusive") if step == GREY_STEP else "pass")
    item = held_item(ctl, queue, sim_clock)
    state["fail"] = True
    run(ctl, sim_clock, 1)
    assert ctl.status().phase == "aborted" and NEW in cube.quarantined
    assert queue.get(item["id"])["status"] == "refused"


def test_without_a_queue_the_stall_rule_aborts(sim_clock: SimClock) -> None:
    ctl, cube = make(sim_clock, None)
    ctl.start("new", "req-1")
    run(ctl, sim_clock, 80)
    st = ctl.status()
    assert st.phase == "aborted" and "stalled" in st.rollout.reason and not cube.quarantined
