"""Property tests of the safety kernel over thousands of generated states, actions and histories.

The invariants are restated here independently of the rule code, so a rule that
is wrong (not only one that crashes) fails them.
"""

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from samantha.core.config import PolicyConfig
from samantha.core.domain import ActionKind
from samantha.kernel.policy import (
    REQUESTER_SCOPES,
    SCOPE_ALLOWS,
    ActionRecord,
    CubeSnapshot,
    ProposedAction,
    SlotState,
    decide,
)

NOW = 1_800_000_000.0
BUNDLES = ["v0", "v1", "v2", "v3"]
PLAYBOOKS = {"pb-tight": 2, "pb-default": None}  # name -> its own max_actions_per_hour
KINDS: list[ActionKind] = ["abort_rollout", "flip", "quarantine", "alert", "safe_mode", "hold_rollout",
                           "advance_rollout", "chaos"]
FAST = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])

slots = st.builds(SlotState, bundle=st.sampled_from([*BUNDLES, None]), healthy=st.booleans(),
                  loaded=st.booleans(), verified=st.booleans())
fit_slots = st.builds(SlotState, bundle=st.sampled_from(BUNDLES), healthy=st.booleans() | st.just(True),
                      loaded=st.just(True), verified=st.booleans() | st.just(True))
bundle_sets = st.frozensets(st.sampled_from(BUNDLES))
snapshots = st.builds(CubeSnapshot, active=slots | fit_slots, standby=slots | fit_slots, quarantined=bundle_sets, safe_mode=st.booleans(),
                      rollout_in_progress=st.booleans(), known_good=bundle_sets)


@st.composite
def actions(draw, requesters=("playbook", "llm", "operator", "rollout", "chaos"), in_scope=False):
    """Any well-formed action; with in_scope, one its requester may take, so it reaches the deeper rules."""
    by = draw(st.sampled_from(requesters))
    scope = draw(st.sampled_from(sorted(REQUESTER_SCOPES[by] if in_scope and by != "llm" else SCOPE_ALLOWS)))
    kinds = sorted(SCOPE_ALLOWS[scope]) if in_scope else KINDS
    limited = [k for k in kinds if k in ("flip", "quarantine")]
    kind = draw(st.sampled_from(limited) if limited and draw(st.booleans()) else st.sampled_from(kinds))
    playbook = draw(st.sampled_from(sorted(PLAYBOOKS))) if by == "playbook" else None
    return ProposedAction(
        kind=kind, requested_by=by, playbook=playbook, reason="generated",
        scope=scope,
        target_slot=draw(st.sampled_from([None, "standby"] if kind == "flip" else [None, "active", "standby"])),
        target_bundle=draw(st.sampled_from(BUNDLES) if kind == "quarantine"
                           else st.none() | st.sampled_from(BUNDLES)),
        severity="critical" if kind == "alert" else None,
        cooldown_s=draw(st.sampled_from([None, 0.0, 30.0, 300.0])),
        firing=draw(st.sampled_from([None, "f1", "f2", "f3"])) if by == "playbook" else None,
        max_actions_per_hour=PLAYBOOKS.get(playbook or ""),
    )


any_action = actions() | actions(in_scope=True)
records = st.builds(ActionRecord, ts=st.floats(NOW - 7200, NOW + 5), kind=st.sampled_from(KINDS),
                    requested_by=st.sampled_from(["playbook", "operator", "rollout", "chaos"]),
                    playbook=st.sampled_from([None, *PLAYBOOKS]), target=st.sampled_from(["-", "standby", *BUNDLES]))
configs = st.builds(PolicyConfig, flip_max_per_hour=st.integers(0, 4), quarantine_max_per_hour=st.integers(0, 4),
                    playbook_cooldown_s=st.sampled_from([0.0, 60.0, 600.0]),
                    playbook_max_actions_per_hour=st.integers(0, 5))


def healthy_bundles(s: CubeSnapshot) -> set[str]:
    """Bundles that could carry all traffic, computed without the kernel's helpers."""
    out = set()
    for slot in (s.active, s.standby):
        if slot.bundle and slot.healthy and slot.loaded and slot.verified and slot.bundle not in s.quarantined:
            out.add(slot.bundle)
    return out


@FAST
@given(any_action, snapshots, st.lists(records, max_size=12), configs)
def test_an_allowed_flip_only_ever_targets_a_fit_unquarantined_standby(a, s, h, cfg):
    d = decide(a, s, h, NOW, cfg)
    if d.allowed and a.kind == "flip":
        sb = s.standby
        assert sb.bundle is not None and sb.healthy and sb.loaded and sb.verified
        assert sb.bundle not in s.quarantined
        assert not s.safe_mode or sb.bundle in s.known_good


@FAST
@given(any_action, snapshots, st.lists(records, max_size=12), configs)
def test_an_allowed_quarantine_never_removes_the_last_healthy_bundle(a, s, h, cfg):
    d = decide(a, s, h, NOW, cfg)
    if d.allowed and a.kind == "quarantine":
        after = s.model_copy(update={"quarantined": s.quarantined | {a.target_bundle}})
        assert healthy_bundles(after) or not healthy_bundles(s)


@FAST
@given(any_action, snapshots.map(lambda s: s.model_copy(update={"safe_mode": True})),
       st.lists(records, max_size=12), configs)
def test_safe_mode_never_allows_rollout_progress_or_chaos(a, s, h, cfg):
    d = decide(a, s, h, NOW, cfg)
    if a.kind in ("advance_rollout", "chaos"):
        assert not d.allowed
    if a.kind == "alert" and a.requested_by != "llm" and a.kind in SCOPE_ALLOWS[a.scope]:
        assert d.allowed or "requester-scope" in d.violated


@FAST
@given(actions(requesters=("llm",)), snapshots, st.lists(records, max_size=12), configs)
def test_llm_originated_actions_are_never_allowed(a, s, h, cfg):
    d = decide(a, s, h, NOW, cfg)
    assert not d.allowed and "llm-never-acts" in d.violated


@FAST
@given(any_action, snapshots, st.lists(records, max_size=12), configs)
def test_every_refusal_names_rules_and_reasons(a, s, h, cfg):
    d = decide(a, s, h, NOW, cfg)
    assert d.allowed == (not d.violated) and len(d.reasons) == len(d.violated)
    assert all(r for r in d.reasons)


# --- simulations: apply allowed actions in time order, the world changes in between ---------------

def apply(s: CubeSnapshot, a: ProposedAction) -> CubeSnapshot:
    if a.kind == "flip":
        return s.model_copy(update={"active": s.standby, "standby": s.active})
    if a.kind == "quarantine":
        return s.model_copy(update={"quarantined": s.quarantined | {a.target_bundle}})
    if a.kind == "safe_mode":
        return s.model_copy(update={"safe_mode": True})
    if a.kind == "abort_rollout":
        return s.model_copy(update={"rollout_in_progress": False})
    return s


steps = st.lists(st.tuples(st.floats(0, 90), st.one_of(
    actions(requesters=("playbook", "operator", "rollout", "chaos"), in_scope=True),
    actions(in_scope=True),
    fit_slots.map(lambda x: ("world", x)))), min_size=10, max_size=80)


def assert_windows(times: list[float], window: float, cap: int, what: str) -> None:
    times = sorted(times)
    for i, t in enumerate(times):
        inside = sum(1 for u in times[: i + 1] if u > t - window)
        assert inside <= cap, f"{what}: {inside} in ({t - window}, {t}] > {cap}"


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.builds(CubeSnapshot, active=fit_slots, standby=fit_slots, rollout_in_progress=st.booleans(),
                 known_good=bundle_sets), steps, configs.map(lambda c: c.model_copy(update={"rate_window_s": 600.0})))
def test_limits_and_invariants_hold_over_any_action_sequence(s, seq, cfg):
    now, history, applied, limited = NOW, [], [], set()
    for dt, item in seq:
        now += dt
        if isinstance(item, tuple):  # the world moves: a slot's health changes under us
            role = "active" if item[1].bundle in (None, "v0", "v1") else "standby"
            s = s.model_copy(update={role: item[1]})
            continue
        before = healthy_bundles(s)
        d = decide(item, s, history, now, cfg)
        limited.update(v for v in d.violated if "rate" in v or "playbook" in v)
        if not d.allowed:
            continue
        if item.kind == "quarantine":
            assert healthy_bundles(apply(s, item)) or not before
        s = apply(s, item)
        history.append(ActionRecord.of(item, now))
        applied.append((now, item))

    event(f"applied flips: {min(3, sum(a.kind == 'flip' for _, a in applied))}+")
    event(f"applied quarantines: {min(3, sum(a.kind == 'quarantine' for _, a in applied))}+")
    for v in limited:
        event(f"refused by {v}")
    w = cfg.rate_window_s
    assert_windows([t for t, a in applied if a.kind == "flip"], w, cfg.flip_max_per_hour, "flips")
    assert_windows([t for t, a in applied if a.kind == "quarantine"], w, cfg.quarantine_max_per_hour, "quarantines")
    for pb, own_cap in PLAYBOOKS.items():
        # a firing is its id; an action without one is a firing of its own
        mine = [(t, a.firing or f"#{i}", a) for i, (t, a) in enumerate(applied)
                if a.playbook == pb and a.kind != "alert"]
        cap = cfg.playbook_max_actions_per_hour if own_cap is None else own_cap
        for t, _, _ in mine:
            firings = {f for u, f, _ in mine if t - w < u <= t}
            assert len(firings) <= cap, f"{pb}: {len(firings)} firings in ({t - w}, {t}] > {cap}"
        for j, (t, f, a) in enumerate(mine):
            cooldown = cfg.playbook_cooldown_s if a.cooldown_s is None else a.cooldown_s
            for u, g, _ in mine[:j]:
                assert g == f or cooldown == 0 or t - u >= cooldown, f"{pb}: firing {f} {t - u} s after {g}"
    assert not any(a.requested_by == "llm" for _, a in applied)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 400), st.sampled_from(["operator", "rollout", "pb-tight", "pb-default"]),
                          st.sampled_from(["flip", "quarantine"])), min_size=5, max_size=80),
       st.integers(0, 4), st.integers(0, 4), st.floats(1, 1200))
def test_a_storm_of_flips_and_quarantines_never_exceeds_any_window(seq, flip_cap, q_cap, window):
    """Both slots always fit and quarantines target an idle bundle, so only the limits can refuse."""
    cfg = PolicyConfig(flip_max_per_hour=flip_cap, quarantine_max_per_hour=q_cap, rate_window_s=window,
                       playbook_cooldown_s=0)
    fit = SlotState(bundle="v1", healthy=True, loaded=True, verified=True)
    s = CubeSnapshot(active=fit, standby=fit.model_copy(update={"bundle": "v2"}))
    now, history, done = NOW, [], {"flip": [], "quarantine": []}
    for dt, who, kind in seq:
        now += dt
        by, scope = ("playbook", "active") if who.startswith("pb") else (who, who)
        a = ProposedAction(kind=kind, scope=scope, requested_by=by, reason="storm",
                           playbook=who if by == "playbook" else None, max_actions_per_hour=PLAYBOOKS.get(who),
                           target_bundle=f"old-{len(history)}" if kind == "quarantine" else None)
        d = decide(a, s, history, now, cfg)
        assert d.allowed or set(d.violated) <= {"flip-rate-limit", "quarantine-rate-limit",
                                                "playbook-max-firings-per-hour"}, d.explain()
        if d.allowed:
            history.append(ActionRecord.of(a, now))
            done[kind].append(now)
    event(f"flips applied: {min(len(done['flip']), 4)}")
    assert_windows(done["flip"], window, flip_cap, "flips")
    assert_windows(done["quarantine"], window, q_cap, "quarantines")
