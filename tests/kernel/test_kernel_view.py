"""One kernel view: the SRE loop, the rollout controller and chaos pre-flight judge the same snapshot.

The property test drives the three real code paths (`SreNodes.kernel_view`, which `decide` uses;
`RolloutController.kernel_view`, which every controller Cube call is judged on; `ChaosService.cube_snapshot`,
which pre-flight reads), sharing one known-good set and one rollout record, over arbitrary Cube states.
The rest: the one definition of a rollout in progress, the known-good set on a real DuckDB file, and the
one definition of the gates that judge a canary.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from samantha.chaos.service import ChaosService
from samantha.core.clock import SimClock
from samantha.core.config import SamanthaConfig
from samantha.core.cube_state import CubeState, QuarantineEntry, SlotState, Weights
from samantha.gates.engine import GateEngine
from samantha.gates.registry import GateRegistry, builtin_gates
from samantha.gates.rollout_policy import RolloutPolicy
from samantha.gates.spec import SequentialGate, ThresholdGate, judges_canary
from samantha.kernel.view import kernel_snapshot, rollout_in_progress
from samantha.loop import tables
from samantha.loop.incidents import IncidentBook
from samantha.loop.known_good import KnownGood
from samantha.loop.ledger import ActionLedger
from samantha.loop.nodes import SreDeps, SreNodes
from samantha.loop.triage import Triager, rule_triage
from samantha.playbooks import PlaybookRunner
from samantha.rollout.controller import RolloutController
from samantha.rollout.record import TERMINAL, MemoryRolloutStore, RolloutRecord
from samantha.telemetry.store import TelemetryStore
from tests.rollout.fakes import FakeCube, MemoryActionLog, ScriptedJudge, verifier

IDS = [c * 64 for c in "abcd"]
PHASES = ["idle", "loading", "shadow", "step", "soak", "flipping", "promoted", "aborted", "failed"]
NOW = 1_800_000_000.0


@st.composite
def cube_states(draw) -> CubeState:
    active = draw(st.sampled_from(["A", "B"]))
    slots = [SlotState(name=n, role="active" if n == active else "standby", bundle_id=draw(st.sampled_from([*IDS, None])),
                       loaded=draw(st.booleans()), verified=draw(st.booleans()), healthy=draw(st.booleans()))
             for n in ("A", "B")]
    w = draw(st.sampled_from([0.0, 1.0, 5.0, 100.0]) | st.floats(0, 100))
    return CubeState(slots=slots, active=active, weights=Weights(active=100 - w, standby=w), shadow=draw(st.booleans()),
                     quarantine=[QuarantineEntry(bundle_id=b, at=0.0) for b in draw(st.sets(st.sampled_from(IDS)))],
                     safe_mode=draw(st.booleans()), generation=draw(st.integers(0, 100)), ts=NOW)


@st.composite
def records(draw) -> RolloutRecord:
    return RolloutRecord(id="ro1", request_id="req-1", bundle_ref="v2", bundle_path="/b/v2",
                         bundle_id=draw(st.sampled_from(IDS)), bundle_label="sensor-mlp@2", expires_at=NOW + 1e6,
                         policy_name="default", policy_version=1, steps=[1, 5, 25, 50, 100],
                         phase=draw(st.sampled_from(PHASES)), step=draw(st.none() | st.integers(0, 4)),
                         started_at=NOW, updated_at=NOW, last_known_good=draw(st.none() | st.sampled_from(IDS)),
                         snapped=draw(st.booleans()))


@pytest.fixture
def parts(tmp_path: Path):
    clock = SimClock(start=NOW)
    cfg = SamanthaConfig(data_dir=str(tmp_path / "state"))
    store = TelemetryStore.open(cfg, clock)
    tables.create(store.write_sql)
    chaos = ChaosService(cfg, store, clock)
    incidents = IncidentBook(store, clock)
    deps = dict(config=cfg, clock=clock, store=store, engine=GateEngine(store, clock), runner=PlaybookRunner([]),
                ledger=ActionLedger(store, clock), incidents=incidents, triager=Triager(incidents, rule_triage),
                audit=None, alert=lambda row: None, resolve_alert=lambda incident: None)
    yield clock, chaos, deps
    chaos.close()
    store.close()


def test_loop_controller_and_chaos_compute_the_same_snapshot(parts) -> None:
    clock, chaos, deps = parts

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(cube_states(), st.none() | records(), st.frozensets(st.sampled_from(IDS)))
    def check(state: CubeState, rec: RolloutRecord | None, known: frozenset[str]) -> None:
        kg = KnownGood()  # the one set all three share, as in the daemon (its persistence: the test below)
        for b in known:
            kg.add(b, source="test")
        store = MemoryRolloutStore()
        if rec is not None:
            store.save(rec)
        controller = RolloutController(FakeCube(clock, {}), ScriptedJudge(), RolloutPolicy(), clock,
                                       verify=verifier({}), store=store, actions=MemoryActionLog(clock),
                                       known_good=kg)
        nodes = SreNodes(SreDeps(cube=FakeCube(clock, {}), rollout=controller, known_good=kg, **deps))
        chaos.known_good, chaos.rollout = kg, controller.mark  # what the daemon hands chaos

        loop_view = nodes.kernel_view(state)
        assert loop_view == controller.kernel_view(state) == chaos.cube_snapshot(state)
        assert loop_view == kernel_snapshot(state, rec.mark() if rec else None, kg.snapshot())
        # the one definition, restated independently of the view's code
        assert loop_view.rollout_in_progress == ((rec is not None and rec.phase not in TERMINAL)
                                                 or state.weights.standby > 0 or state.shadow)
        assert known <= loop_view.known_good
        assert loop_view.known_good - known <= ({rec.last_known_good} if rec is not None else set())
        assert loop_view.weights == {"active": state.weights.active / 100, "standby": state.weights.standby / 100}
        assert loop_view.quarantined == {q.bundle_id for q in state.quarantine}
        for role in ("active", "standby"):
            s = state.slot(role)
            assert loop_view.slot(role).bundle == s.bundle_id
            assert (loop_view.slot(role).loaded, loop_view.slot(role).healthy, loop_view.slot(role).verified) == (
                s.loaded, s.healthy, s.verified)

    check()


def _state(*, weight: float = 0.0, shadow: bool = False) -> CubeState:
    return CubeState(slots=[SlotState(name="A", role="active", bundle_id=IDS[0], loaded=True, verified=True,
                                      healthy=True),
                            SlotState(name="B", role="standby", bundle_id=IDS[1], loaded=True, verified=True,
                                      healthy=True)],
                     active="A", weights=Weights(active=100 - weight, standby=weight), shadow=shadow, quarantine=[],
                     safe_mode=False, generation=1, ts=NOW)


@pytest.mark.parametrize("phase,weight,shadow,expected", [
    ("loading", 0, False, True),    # the controller drives it; the Cube shows nothing yet
    ("flipping", 0, False, True),   # shadow already off, weights not yet flipped
    ("step", 5, False, True),
    (None, 5, False, True),         # weights set outside the controller: still a canary on the Cube
    (None, 0, True, True),          # shadow scoring is a rollout phase (the loop said so; chaos ignored it)
    ("aborted", 0, True, True),
    ("promoted", 0, False, False),
    (None, 0, False, False),
])
def test_rollout_in_progress_is_the_record_or_the_cube(phase, weight, shadow, expected) -> None:
    mark = None
    if phase is not None:
        mark = RolloutRecord(id="ro1", request_id="r", bundle_ref="v2", bundle_path="/b", bundle_id=IDS[1],
                             bundle_label="v2", expires_at=NOW, policy_name="p", policy_version=1, steps=[1],
                             phase=phase, started_at=NOW, updated_at=NOW).mark()
    assert rollout_in_progress(_state(weight=weight, shadow=shadow), mark) is expected
    assert kernel_snapshot(_state(weight=weight, shadow=shadow), mark, frozenset()).rollout_in_progress is expected


def test_known_good_is_durable_in_the_store(tmp_path: Path) -> None:
    clock = SimClock(start=NOW)
    cfg = SamanthaConfig(data_dir=str(tmp_path / "state"))
    store = TelemetryStore.open(cfg, clock)
    tables.create(store.write_sql)
    kg = KnownGood(store, clock)
    assert kg.add(IDS[0], source="rollout", reason="promoted") is True
    assert kg.add(IDS[0], source="loop") is False  # first voucher wins; one row
    assert kg.add(None, source="loop") is False and kg.add("", source="loop") is False
    clock.advance(5)
    assert kg.add(IDS[1], source="loop", reason="healthy")
    assert IDS[0] in kg and IDS[2] not in kg and kg.snapshot() == {IDS[0], IDS[1]}
    assert [(r["bundle_id"], r["source"]) for r in kg.rows()] == [(IDS[0], "rollout"), (IDS[1], "loop")]
    store.close()
    store = TelemetryStore.open(cfg, clock)  # a new process on the same file
    try:
        again = KnownGood(store, clock)
        assert again.snapshot() == {IDS[0], IDS[1]}
        assert again.add(IDS[0], source="loop") is False
    finally:
        store.close()
    assert KnownGood().add(IDS[0], source="test") and KnownGood().rows() == []  # in memory: unit tests only


def test_promotion_adds_to_the_shared_set_and_the_loop_reads_it(parts) -> None:
    clock, _, deps = parts
    from tests.rollout.fakes import NEW, OLD
    from tests.rollout.test_rollout_controller import make

    kg = KnownGood(deps["store"], clock)
    ctl, cube = make(clock)
    ctl.known_good = kg  # as build_controller wires it
    nodes = SreNodes(SreDeps(cube=cube, rollout=ctl, known_good=kg, **deps))
    ctl.start("new", "req-1")
    for _ in range(200):
        clock.advance(0.25)
        s = ctl.tick(clock.time())
        if s and s.phase == "promoted":
            break
    assert ctl.status().phase == "promoted"
    assert {OLD, NEW} <= kg.snapshot() and nodes.kernel_view(cube.state()).known_good >= {OLD, NEW}
    assert {r["bundle_id"]: r["source"] for r in KnownGood(deps["store"], clock).rows()} == {NEW: "rollout",
                                                                                           OLD: "rollout"}


def test_one_definition_of_the_gates_that_judge_a_canary(parts) -> None:
    _, chaos, deps = parts
    standby = [ThresholdGate(name="standby-p99", metric="latency_ms", aggregate="p99", value=100, slot="standby"),
               SequentialGate(name="standby-cusum", signal="errors", method="cusum", slot="standby")]
    active_cusum = SequentialGate(name="active-cusum", signal="errors", method="cusum", slot="active")
    assert all(judges_canary(g) for g in standby) and not judges_canary(active_cusum)
    reg = GateRegistry.with_builtins()
    from samantha.gates.registry import Provenance

    for g in [*standby, active_cusum]:
        reg.add(g, Provenance(source="builtin"))
    chaos.registry = reg
    canary = {g.name for g in [*builtin_gates(), *standby, active_cusum] if judges_canary(g)}
    assert {"canary-errors", "canary-latency-mwu", "standby-p99", "standby-cusum"} <= canary
    assert set(chaos.steady_state_gates()) == set(reg.names()) - canary
    from samantha.playbooks import load_playbook

    shipped = [load_playbook(f) for f in sorted((Path(__file__).resolve().parents[2] / "playbooks").glob("*.yaml"))]
    runner = PlaybookRunner(shipped, reg)
    nodes = SreNodes(SreDeps(cube=None, **{**deps, "runner": runner}))
    steady = {g.name for g in nodes._steady_gates}  # what the loop evaluates with no canary on the Cube
    assert steady == {g.name for g in runner.gates if not judges_canary(g)} and steady < {g.name for g in runner.gates}
    assert steady <= set(chaos.steady_state_gates())  # the same gates count as steady state for chaos
