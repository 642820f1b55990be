"""The rollout state machine's logic on a SimClock with an in-memory Cube and a scripted judge.

End-to-end behaviour on the real twin is in test_rollout_twin.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from samantha.core.clock import SimClock
from samantha.core.config import PolicyConfig
from samantha.cube.protocol import CubeError
from samantha.gates.rollout_policy import RolloutPolicy
from samantha.kernel.policy import ActionRecord
from samantha.loop import tables
from samantha.loop.ledger import ActionLedger
from samantha.rollout.actions import RolloutActions
from samantha.rollout.bundle_check import BundleInfo, BundleRejected
from samantha.rollout.controller import RolloutController, RolloutRefused
from samantha.rollout.record import DuckRolloutStore, MemoryRolloutStore
from samantha.telemetry.store import TelemetryStore
from tests.rollout.fakes import NEW, OLD, Crash, FakeCube, MemoryActionLog, ScriptedJudge, verifier

FAR = 4_000_000_000.0


def make(clock: SimClock, *, judge: ScriptedJudge | None = None, store=None, actions=None, shadow: bool = True,
         cube: FakeCube | None = None, kernel: PolicyConfig | None = None, max_step_s: float = 60.0):
    cube = cube or FakeCube(clock, {"/b/new": NEW, "/b/old": OLD})
    policy = RolloutPolicy(shadow={"enabled": shadow, "min_samples": 10, "min_duration": 1},
                           steps=[{"weight": w, "min_samples": 10, "min_duration": 1} for w in (1, 5, 25, 50, 100)],
                           soak=2)
    info = {"new": BundleInfo("/b/new", NEW, "sensor-mlp@2", FAR, "k"),
            "old": BundleInfo("/b/old", OLD, "sensor-mlp@1", FAR, "k")}
    ctl = RolloutController(cube, judge or ScriptedJudge(), policy, clock, verify=verifier(info),
                            store=store or MemoryRolloutStore(), actions=actions or MemoryActionLog(clock),
                            kernel=kernel, max_step_s=max_step_s)
    return ctl, cube


def run(ctl: RolloutController, clock: SimClock, seconds: float, dt: float = 0.25) -> None:
    for _ in range(int(seconds / dt)):
        clock.advance(dt)
        ctl.tick(clock.time())


def test_good_rollout_steps_through_every_weight_and_flips(sim_clock: SimClock) -> None:
    ctl, cube = make(sim_clock, judge=ScriptedJudge(need_s=1.0))
    st = ctl.start("new", "req-1")
    assert st.phase == "shadow" and cube.shadow and cube.slot[cube.standby] == NEW
    seen = []
    for _ in range(100):
        sim_clock.advance(0.25)
        s = ctl.tick(sim_clock.time())
        if s and (not seen or seen[-1] != (s.phase, s.weight)):
            seen.append((s.phase, s.weight))
        if s and s.phase == "promoted":
            break
    assert [p for p, _ in seen] == ["shadow", "step", "step", "step", "step", "soak", "promoted"]
    assert cube.ops("weights") == [1, 5, 25, 50, 100]
    assert cube.active == "B" and cube.slot["B"] == NEW and cube.slot["A"] == OLD and cube.weight == 0
    assert not cube.shadow and not cube.quarantined
    rec = ctl.status().rollout
    assert rec.last_known_good == OLD and rec.prior_active_bundle == OLD
    assert len(rec.step_verdicts) == 6 and all(v.status == "pass" for v in rec.step_verdicts)
    flip = next(d for d in rec.decisions if d.kind == "flip")
    assert flip.result == "done" and flip.evidence is not None and flip.evidence.weight == 100


def test_regression_snaps_back_first_then_quarantines_with_evidence(sim_clock: SimClock) -> None:
    judge = ScriptedJudge(lambda step: "fail" if step == 1 else "pass")
    ctl, cube = make(sim_clock, judge=judge)
    ctl.start("new", "req-1")
    run(ctl, sim_clock, 2)
    st = ctl.status()
    assert st.phase == "aborted" and st.weight == 0
    assert cube.weight == 0 and not cube.shadow and NEW in cube.quarantined and cube.active == "A"
    assert cube.ops("weights") == [1, 5, 0]
    order = [o for o, _ in cube.applied]
    assert order[-3:] == ["weights", "shadow", "quarantine"]  # weights back before anything else
    rec = st.rollout
    assert rec.quarantined and "step 2 (5%)" in rec.reason
    kinds = [d.kind for d in rec.decisions]
    assert kinds[-4:] == ["weights", "shadow_off", "quarantine", "alert"]
    for d in rec.decisions[-4:]:
        assert d.evidence is not None and d.evidence.status == "fail" and d.evidence.step == 1
    # nothing moves after an abort
    n = len(cube.applied)
    run(ctl, sim_clock, 2)
    assert len(cube.applied) == n


def test_shadow_failure_never_gives_users_the_bundle(sim_clock: SimClock) -> None:
    ctl, cube = make(sim_clock, judge=ScriptedJudge(lambda step: "fail"))
    ctl.start("new", "req-1")
    run(ctl, sim_clock, 0.5)
    assert ctl.status().phase == "aborted"
    assert cube.ops("weights") == [0] and NEW in cube.quarantined
    assert "shadow scoring" in ctl.status().rollout.reason


def test_quarantined_bundle_cannot_start_again(sim_clock: SimClock) -> None:
    ctl, cube = make(sim_clock, judge=ScriptedJudge(lambda step: "fail"))
    ctl.start("new", "req-1")
    run(ctl, sim_clock, 0.5)
    with pytest.raises(RolloutRefused) as e:
        ctl.start("new", "req-2")
    assert e.value.status == 409 and e.value.code == "quarantined"


def test_start_refusals(sim_clock: SimClock) -> None:
    ctl, cube = make(sim_clock, judge=ScriptedJudge(lambda step: "inconclusive"))
    with pytest.raises(BundleRejected):
        ctl.start("nope", "req-0")
    with pytest.raises(RolloutRefused) as e:
        ctl.start("old", "req-0")
    assert e.value.code == "already_active"
    ctl.start("new", "req-1")
    assert ctl.start("new", "req-1").phase == "shadow"  # the same request again: idempotent
    with pytest.raises(RolloutRefused) as e:
        ctl.start("old", "req-1")
    assert e.value.code == "request_id_reused"
    with pytest.raises(RolloutRefused) as e:
        ctl.start("new", "req-2")
    assert e.value.code == "rollout_in_progress"
    assert cube.ops("load") == [NEW]


def test_bundle_expiring_during_the_rollout_is_rejected(sim_clock: SimClock) -> None:
    ctl, _ = make(sim_clock)
    ctl.verify = verifier({"soon": BundleInfo("/b/new", NEW, "x@2", sim_clock.time() + 3, "k")})
    with pytest.raises(BundleRejected) as e:
        ctl.start("soon", "req-1")
    assert e.value.kind == "expired"


def test_load_refused_by_the_cube_fails_the_rollout(sim_clock: SimClock) -> None:
    ctl, cube = make(sim_clock)
    cube.fail_on["load"] = CubeError(422, "tampered", "model.npz sha256 does not match", "bundle")
    st = ctl.start("new", "req-1")
    assert st.phase == "failed" and "tampered" in st.rollout.reason
    assert cube.slot[cube.standby] is None and cube.weight == 0


def test_operator_abort_does_not_quarantine(sim_clock: SimClock) -> None:
    ctl, cube = make(sim_clock, judge=ScriptedJudge(need_s=1.0))
    ctl.start("new", "req-1")
    run(ctl, sim_clock, 1.5)
    assert ctl.status().weight > 0
    with pytest.raises(RolloutRefused):
        ctl.abort("  ")
    st = ctl.abort("maintenance window over")
    assert st.phase == "aborted" and cube.weight == 0 and not cube.quarantined and not cube.shadow
    with pytest.raises(RolloutRefused) as e:
        ctl.abort("again")
    assert e.value.code == "no_rollout"


def test_inconclusive_holds_then_stalls_without_quarantine(sim_clock: SimClock) -> None:
    ctl, cube = make(sim_clock, judge=ScriptedJudge(lambda step: "pass" if step == "shadow" else "inconclusive"),
                     max_step_s=10)
    ctl.start("new", "req-1")
    run(ctl, sim_clock, 5)
    assert ctl.status().phase == "step" and cube.weight == 1
    run(ctl, sim_clock, 10)
    st = ctl.status()
    assert st.phase == "aborted" and "stalled" in st.rollout.reason and not cube.quarantined and cube.weight == 0


def test_no_shadow_phase_starts_at_first_step(sim_clock: SimClock) -> None:
    ctl, cube = make(sim_clock, shadow=False)
    st = ctl.start("new", "req-1")
    assert st.phase == "step" and st.weight == 1 and not cube.shadow


def test_kernel_flip_rate_limit_holds_at_full_weight(sim_clock: SimClock) -> None:
    actions = MemoryActionLog(sim_clock)
    ctl, cube = make(sim_clock, actions=actions, kernel=PolicyConfig(flip_max_per_hour=0), max_step_s=5)
    ctl.start("new", "req-1")
    run(ctl, sim_clock, 3)
    st = ctl.status()
    assert st.phase == "flipping" and cube.weight == 100 and cube.active == "A"
    refusals = [d for d in st.rollout.decisions if d.kind == "flip" and d.result == "refused"]
    assert len(refusals) == 1 and "flip-rate-limit" in refusals[0].detail  # noted once, not every tick
    run(ctl, sim_clock, 6)
    assert ctl.status().phase == "aborted" and cube.weight == 0 and cube.active == "A"
    assert isinstance(actions.history()[0], ActionRecord)


def test_restart_mid_call_completes_it_once(tmp_path: Path, sim_clock: SimClock) -> None:
    """The process dies after the Cube applied the flip and before the result was recorded: a new
    controller on the same DuckDB file re-sends the same request id; the Cube flips exactly once."""
    db = TelemetryStore(tmp_path / "d.duckdb", clock=sim_clock)
    tables.create(db.write_sql)
    try:
        ctl, cube = make(sim_clock, store=DuckRolloutStore(db), actions=RolloutActions(ActionLedger(db, sim_clock), dict))
        ctl.start("new", "req-1")
        cube.crash_on = "flip"
        with pytest.raises(Crash):
            run(ctl, sim_clock, 20)
        assert cube.active == "B" and len(cube.ops("flip")) == 1
        del ctl
        ctl2, _ = make(sim_clock, store=DuckRolloutStore(db), actions=RolloutActions(ActionLedger(db, sim_clock), dict),
                       cube=cube)
        assert ctl2.status().phase == "flipping" and ctl2.status().rollout.pending.op == "flip"
        run(ctl2, sim_clock, 1)
        st = ctl2.status()
        assert st.phase == "promoted" and len(cube.ops("flip")) == 1 and st.rollout.last_known_good == OLD
        flips = [d for d in st.rollout.decisions if d.kind == "flip"]
        assert flips[-1].detail == "completed after restart"
        rows = db.read_arrow("SELECT id, status FROM actions WHERE kind = 'flip'").to_pylist()
        assert [(r["id"], r["status"]) for r in rows] == [(flips[-1].request_id, "done")]  # one row: intent, then done
        assert len(DuckRolloutStore(db).history(st.rollout.id)) == st.rollout.rev
    finally:
        db.close()


def test_restart_after_the_cube_forgot_the_request_id_does_not_flip_twice(sim_clock: SimClock) -> None:
    """The Cube restarted too and lost its request ids: the resume sees in the Cube's state that the flip
    took effect and completes it, instead of re-sending it (a second flip would put the old bundle back)."""
    store = MemoryRolloutStore()
    ctl, cube = make(sim_clock, store=store)
    ctl.start("new", "req-1")
    cube.crash_on = "flip"
    with pytest.raises(Crash):
        run(ctl, sim_clock, 20)
    cube.seen.clear()
    ctl2, _ = make(sim_clock, store=store, cube=cube)
    run(ctl2, sim_clock, 1)
    st = ctl2.status()
    assert st.phase == "promoted" and len(cube.ops("flip")) == 1 and cube.active == "B"
    assert [d.detail for d in st.rollout.decisions if d.kind == "flip"][-1] == "completed after restart"


def test_restart_mid_quarantine_completes_it_and_ends_the_abort(sim_clock: SimClock) -> None:
    store = MemoryRolloutStore()
    ctl, cube = make(sim_clock, judge=ScriptedJudge(lambda step: "fail" if step == 1 else "pass"), store=store)
    ctl.start("new", "req-1")
    cube.crash_on = "quarantine"
    with pytest.raises(Crash):
        run(ctl, sim_clock, 2)
    assert cube.weight == 0 and NEW in cube.quarantined and store.latest().pending.op == "quarantine"
    ctl2, _ = make(sim_clock, store=store, cube=cube)
    run(ctl2, sim_clock, 1)
    st = ctl2.status()
    assert st.phase == "aborted" and st.rollout.quarantined and st.rollout.pending is None
    assert "step 2 (5%)" in st.rollout.reason and len(cube.ops("quarantine")) == 1 and cube.ops("weights") == [1, 5, 0]


def test_restart_mid_step_resumes_judging_where_it_was(tmp_path: Path, sim_clock: SimClock) -> None:
    db = TelemetryStore(tmp_path / "d.duckdb", clock=sim_clock)
    try:
        ctl, cube = make(sim_clock, judge=ScriptedJudge(need_s=1.0), store=DuckRolloutStore(db))
        ctl.start("new", "req-1")
        cube.crash_on = "weights"
        with pytest.raises(Crash):
            run(ctl, sim_clock, 5)
        assert cube.ops("weights") == [1]
        ctl2, _ = make(sim_clock, judge=ScriptedJudge(need_s=1.0), store=DuckRolloutStore(db), cube=cube)
        run(ctl2, sim_clock, 20)
        assert ctl2.status().phase == "promoted" and cube.ops("weights") == [1, 5, 25, 50, 100]
    finally:
        db.close()


def test_playbook_failure_snaps_back_and_quarantines(sim_clock: SimClock) -> None:
    """A playbook that sees the canary regress (bad-canary) fails the rollout like a failing step does:
    weights back, shadow off, and the bundle quarantined by the policy's on-failure actions."""
    ctl, cube = make(sim_clock, judge=ScriptedJudge(need_s=1.0))
    ctl.start("new", "req-1")
    run(ctl, sim_clock, 1.5)
    assert ctl.status().weight > 0
    assert ctl.fail("playbook bad-canary: canary regressed against the incumbent")
    st = ctl.status()
    assert st.phase == "aborted" and cube.weight == 0 and not cube.shadow and cube.quarantined
    assert not ctl.fail("again")  # nothing in progress any more
