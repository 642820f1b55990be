"""Property tests of the kernel's Recall steps (samantha/kernel/recall.py) over generated Cube snapshots.

The Cube is modelled here (a flip swaps the slots, an abort takes the standby's traffic off, a quarantine adds
to the set) and every step is first judged by `policy.decide`, as the daemon does. The invariants are stated
independently of the step code: a recall never puts a bundle nobody vouched for on the active slot, never
leaves the recalled bundle active when it reports done, always ends (done or blocked) within a few steps, and
a recall already applied asks for nothing.
"""

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from samantha.kernel.policy import CubeSnapshot, ProposedAction, SlotState, decide
from samantha.kernel.recall import next_recall_step

NOW = 1_800_000_000.0
BUNDLES = ["v0", "v1", "v2"]
FAST = settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])

slots = st.builds(SlotState, bundle=st.sampled_from([*BUNDLES, None]), healthy=st.booleans() | st.just(True),
                  loaded=st.booleans() | st.just(True), verified=st.booleans() | st.just(True))
bundle_sets = st.frozensets(st.sampled_from(BUNDLES))
snapshots = st.builds(CubeSnapshot, active=slots, standby=slots, quarantined=bundle_sets, safe_mode=st.booleans(),
                      rollout_in_progress=st.booleans(), known_good=bundle_sets,
                      weights=st.sampled_from([{"active": 1.0, "standby": 0.0}, {"active": 0.75, "standby": 0.25}]))



@st.composite
def recalled_active(draw):
    """The case a Recall exists for: the recalled bundle v2 active, often a last-known-good v1 in standby."""
    s = draw(snapshots)
    good = SlotState(bundle="v1", healthy=True, loaded=True, verified=True)
    return s.model_copy(update={"active": SlotState(bundle="v2", healthy=draw(st.booleans()), loaded=True,
                                                    verified=True),
                                "standby": good if draw(st.booleans()) else s.standby,
                                "known_good": s.known_good | ({"v1"} if draw(st.booleans()) else set())})


cubes = snapshots | recalled_active()


def effect(s: CubeSnapshot, a: ProposedAction) -> CubeSnapshot:
    """What the twin does with each action (samantha/twin/control.py), as a snapshot."""
    if a.kind == "flip":
        return s.model_copy(update={"active": s.standby, "standby": s.active,
                                    "weights": {"active": 1.0, "standby": 0.0}})
    if a.kind == "abort_rollout":
        return s.model_copy(update={"weights": {"active": 1.0, "standby": 0.0}, "rollout_in_progress": False})
    if a.kind == "quarantine":
        assert a.target_bundle != s.active.bundle, "the twin refuses to quarantine the active bundle"
        return s.model_copy(update={"quarantined": s.quarantined | {a.target_bundle}})
    raise AssertionError(f"a recall never asks for {a.kind}")


def run(s: CubeSnapshot, bundle: str) -> tuple[str, CubeSnapshot, list[str]]:
    kinds: list[str] = []
    for _ in range(4):
        step = next_recall_step(s, bundle, "test")
        if step.status != "act":
            return step.status, s, kinds
        assert step.action is not None and step.action.requested_by == "operator"
        verdict = decide(step.action, s, [], NOW)
        if not verdict.allowed:
            return "refused", s, kinds
        kinds.append(step.action.kind)
        before = s
        s = effect(s, step.action)
        if step.action.kind == "flip":  # the flip's target: known-good, serviceable, not quarantined
            assert before.standby.bundle in before.known_good and before.serviceable("standby")
    raise AssertionError(f"no end after {kinds}")


@FAST
@given(cubes, st.sampled_from(BUNDLES))
def test_a_recall_ends_and_never_trades_for_an_unvouched_bundle(s, bundle):
    status, end, kinds = run(s, bundle)
    event(f"{status}: {'+'.join(kinds) or '-'}")
    assert kinds.count("flip") <= 1
    if status == "done":
        assert bundle in end.quarantined and end.active.bundle != bundle
        assert not (end.standby.bundle == bundle and end.weights["standby"] > 0)
    if end.active.bundle != s.active.bundle:  # flipped: to a bundle that was known-good
        assert end.active.bundle in s.known_good and end.active.bundle not in s.quarantined


@FAST
@given(snapshots, st.sampled_from(BUNDLES))
def test_active_recalled_without_a_known_good_standby_is_blocked_and_keeps_serving(s, bundle):
    s = s.model_copy(update={"active": s.active.model_copy(update={"bundle": bundle})})
    ok = (s.standby.bundle is not None and s.serviceable("standby") and s.standby.bundle in s.known_good
          and s.standby.bundle != bundle)
    step = next_recall_step(s, bundle, "test")
    if not ok:
        assert step.status == "blocked" and "keeps serving" in step.reason
    elif ok:
        assert step.status == "act" and step.action is not None and step.action.kind == "flip"


@FAST
@given(cubes, st.sampled_from(BUNDLES))
def test_applied_twice_asks_for_nothing(s, bundle):
    status, end, _ = run(s, bundle)
    if status == "done":
        again = next_recall_step(end, bundle, "replayed")
        assert again.status == "done" and again.action is None
