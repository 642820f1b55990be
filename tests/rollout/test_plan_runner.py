"""The PlanRunner's logic on the injectable SimClock, with the rollout controller over the in-memory Cube
(tests/rollout/fakes.py): a Plan waits hours for its maintenance window (saying why, audited once per
reason), starts its rollout the tick the window opens, never twice (also after a restart), and waits with
every reason at once (version, required bundle, safe mode, another rollout).

The same on the real daemon, twin and NATS hub: tests/fleet/test_plan_e2e.py.
"""

from __future__ import annotations

from datetime import UTC, datetime

from samantha.core.clock import SimClock
from samantha.kernel.plans import Plan
from samantha.rollout.plans import PlanRunner
from tests.rollout.fakes import NEW, OLD, ScriptedJudge
from tests.rollout.test_rollout_controller import make, run


def hms(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S")


def plan(sim_clock: SimClock, pid: str = "roll-new", **constraints) -> Plan:
    now = sim_clock.time()
    return Plan.model_validate({"id": pid, "bundle": "new", "constraints": {
        "window": {"start": hms(now + 2 * 3600), "end": hms(now + 3 * 3600)}, **constraints}})


def test_a_plan_waits_for_its_window_then_its_rollout_runs_once(sim_clock: SimClock, tmp_path) -> None:
    ctl, cube = make(sim_clock, judge=ScriptedJudge(need_s=1.0))
    audit: list[tuple[str, dict]] = []
    runner = PlanRunner(ctl, tmp_path / "plans.json", sim_clock, samantha_version="0.1.0",
                        audit=lambda k, p: audit.append((k, p)))
    p = plan(sim_clock, requires_active=OLD[:8], min_samantha_version="0.1")
    opens = sim_clock.time() + 2 * 3600
    for _ in range(2 * 60):  # two hours, a tick a minute: waiting, the countdown moving, one audit record
        [st] = runner.tick([p])
        assert st["status"] == "waiting" and st["waiting"][0].startswith("window: outside"), st
        assert st["next_window_at"] == opens and ctl.status().phase == "idle"
        sim_clock.advance(60)
    [st] = runner.tick([p])
    assert st["status"] == "started" and st["started_at"] == opens, st
    assert ctl.status().rollout.request_id == "plan-roll-new" and cube.slot[cube.standby] == NEW
    run(ctl, sim_clock, 30)
    assert ctl.status().phase == "promoted"
    assert [(k, x["said"]) for k, x in audit] == [("plan_waiting", ["window"]), ("plan_started", [])]

    again = PlanRunner(ctl, tmp_path / "plans.json", sim_clock, samantha_version="0.1.0")  # a restart
    sim_clock.advance(86400)  # the next day's window: a Plan starts at most once
    assert again.tick([p])[0]["status"] == "started" and ctl.status().rollout.request_id == "plan-roll-new"


def test_a_waiting_plan_says_everything_it_waits_for(sim_clock: SimClock, tmp_path) -> None:
    ctl, cube = make(sim_clock, judge=ScriptedJudge(need_s=1.0))
    runner = PlanRunner(ctl, tmp_path / "plans.json", sim_clock, samantha_version="0.1.0")
    p = plan(sim_clock, requires_active=NEW[:8], min_samantha_version="2.0")
    [st] = runner.tick([p], safe_mode=True)
    assert [r.split(":")[0] for r in st["waiting"]] == ["safe mode", "window", "min_samantha_version",
                                                         "requires_active"], st
    ctl.start("new", "someone-else")  # another rollout in progress
    free = Plan.model_validate({"id": "now", "bundle": "new"})
    [st] = runner.tick([free])
    assert st["status"] == "waiting" and st["waiting"] == [f"rollout: {ctl.status().rollout.id} is shadow"], st
    ctl.abort("test")
    [st] = runner.tick([Plan.model_validate({"id": "back", "bundle": "old"})])
    assert st["status"] == "done" and "already the active bundle" in st["waiting"][0], st
