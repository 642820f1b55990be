"""The safety kernel, rule by rule: each test shows one rule refusing, and the same action allowed
once the one offending fact is changed."""

import pytest
from pydantic import ValidationError

from samantha.core.config import PolicyConfig, SamanthaConfig
from samantha.kernel.policy import (
    RULES,
    SCOPE_ALLOWS,
    ActionRecord,
    CubeSnapshot,
    ProposedAction,
    SlotState,
    decide,
    rule_catalog,
    scope_for_playbook,
)

NOW = 1_800_000_000.0
GOOD = SlotState(bundle="v1", healthy=True, loaded=True, verified=True)
CANARY = SlotState(bundle="v2", healthy=True, loaded=True, verified=True)


def snap(**kw) -> CubeSnapshot:
    return CubeSnapshot(**{"active": GOOD, "standby": CANARY, "known_good": frozenset({"v1"}), **kw})


def act(kind, **kw) -> ProposedAction:
    defaults = {"canary": "canary", "flip": "active", "quarantine": "canary", "alert": "host",
                "safe_mode": "host", "hold_rollout": "canary", "abort_rollout": "canary",
                "advance_rollout": "rollout", "chaos": "chaos"}
    scope = kw.pop("scope", defaults[kind])
    by = kw.pop("requested_by", {"rollout": "rollout", "chaos": "chaos", "operator": "operator"}.get(scope, "playbook"))
    if by == "playbook":
        kw.setdefault("playbook", "pb")
    if kind == "quarantine":
        kw.setdefault("target_bundle", "v2")
    if kind == "alert":
        kw.setdefault("severity", "warning")
    return ProposedAction(kind=kind, scope=scope, requested_by=by, reason="test", **kw)


def refused_by(decision) -> set[str]:
    assert decision.allowed == (not decision.violated)
    assert len(decision.reasons) == len(decision.violated)
    return set(decision.violated)


def test_rules_are_explainable_data():
    ids = [r.id for r in RULES]
    assert len(ids) == len(set(ids))
    assert all(r.doc and len(r.doc) > 20 for r in RULES)
    assert {c["id"] for c in rule_catalog()} == set(ids)


def test_healthy_defaults_allow_the_normal_moves():
    s = snap(rollout_in_progress=True)
    for a in [act("abort_rollout"), act("hold_rollout"), act("quarantine"), act("alert"),
              act("flip"), act("safe_mode"), act("advance_rollout")]:
        d = decide(a, s, [], NOW)
        assert d.allowed, d.explain()


def test_llm_never_acts_even_for_an_alert():
    for kind in ["alert", "hold_rollout", "flip"]:
        for scope in ["canary", "active", "host", "operator"]:
            d = decide(act(kind, scope=scope, requested_by="llm"), snap(), [], NOW)
            assert "llm-never-acts" in refused_by(d)


def test_requester_scope():
    assert "requester-scope" in refused_by(decide(act("flip", scope="operator", requested_by="playbook"),
                                                  snap(), [], NOW))
    assert "requester-scope" in refused_by(decide(act("flip", scope="active", requested_by="rollout"),
                                                  snap(), [], NOW))
    assert decide(act("flip", scope="operator", requested_by="operator"), snap(), [], NOW).allowed


@pytest.mark.parametrize("scope,kind", [("canary", "flip"), ("host", "quarantine"), ("canary", "safe_mode"),
                                        ("rollout", "chaos"), ("chaos", "flip"), ("active", "advance_rollout")])
def test_scope_allow_list(scope, kind):
    assert kind not in SCOPE_ALLOWS[scope]
    d = decide(act(kind, scope=scope), snap(rollout_in_progress=True), [], NOW)
    assert "scope-allow-list" in refused_by(d)
    assert kind in d.reasons[d.violated.index("scope-allow-list")]


def test_operator_may_take_any_kind():
    assert SCOPE_ALLOWS["operator"] >= set().union(*(v for k, v in SCOPE_ALLOWS.items() if k != "operator"))


def test_target_matches_state_refuses_stale_decisions():
    stale = act("quarantine", target_slot="standby", target_bundle="v1")
    assert "target-matches-state" in refused_by(decide(stale, snap(), [], NOW))
    assert decide(act("quarantine", target_slot="standby", target_bundle="v2"), snap(), [], NOW).allowed
    assert "target-matches-state" in refused_by(decide(act("flip", target_bundle="v9"), snap(), [], NOW))
    assert decide(act("flip", target_bundle="v2"), snap(), [], NOW).allowed


@pytest.mark.parametrize("field", ["healthy", "loaded", "verified"])
def test_never_flip_to_an_unfit_standby(field):
    bad = CANARY.model_copy(update={field: False})
    d = decide(act("flip"), snap(standby=bad), [], NOW)
    assert refused_by(d) == {"flip-target-serviceable"}
    assert field in d.reasons[0]


def test_never_flip_to_an_empty_standby():
    empty = SlotState(bundle=None, healthy=True, loaded=True, verified=True)
    assert refused_by(decide(act("flip"), snap(standby=empty), [], NOW)) == {"flip-target-serviceable"}


def test_never_flip_to_a_quarantined_bundle():
    d = decide(act("flip"), snap(quarantined=frozenset({"v2"})), [], NOW)
    assert refused_by(d) == {"flip-not-quarantined"}


def test_never_quarantine_the_last_healthy_bundle():
    sick_standby = CANARY.model_copy(update={"healthy": False})
    d = decide(act("quarantine", target_bundle="v1", scope="active"), snap(standby=sick_standby), [], NOW)
    assert refused_by(d) == {"quarantine-keeps-one-healthy"}
    # with a healthy standby holding another bundle, the active bundle may go
    assert decide(act("quarantine", target_bundle="v1", scope="active"), snap(), [], NOW).allowed
    # both slots serving the same bundle: quarantining it leaves nothing
    same = snap(standby=GOOD)
    assert "quarantine-keeps-one-healthy" in refused_by(decide(act("quarantine", target_bundle="v1"), same, [], NOW))
    # a quarantined standby does not count as the remaining healthy bundle
    q = snap(quarantined=frozenset({"v2"}))
    assert "quarantine-keeps-one-healthy" in refused_by(decide(act("quarantine", target_bundle="v1"), q, [], NOW))
    # an unhealthy bundle may always be quarantined, even when nothing else is healthy
    sick_active = GOOD.model_copy(update={"healthy": False})
    assert decide(act("quarantine", target_bundle="v1"), snap(active=sick_active, standby=sick_standby),
                  [], NOW).allowed


def test_advance_needs_a_rollout_and_a_serviceable_canary():
    assert refused_by(decide(act("advance_rollout"), snap(), [], NOW)) == {"advance-needs-serviceable-canary"}
    sick = CANARY.model_copy(update={"verified": False})
    assert refused_by(decide(act("advance_rollout"), snap(standby=sick, rollout_in_progress=True), [], NOW)) \
        == {"advance-needs-serviceable-canary"}
    assert "advance-needs-serviceable-canary" in refused_by(
        decide(act("advance_rollout"), snap(rollout_in_progress=True, quarantined=frozenset({"v2"})), [], NOW))


def test_no_chaos_during_rollout():
    assert decide(act("chaos"), snap(), [], NOW).allowed
    assert refused_by(decide(act("chaos"), snap(rollout_in_progress=True), [], NOW)) == {"no-chaos-during-rollout"}


def test_safe_mode_restrictions():
    sm = snap(safe_mode=True, rollout_in_progress=True)
    assert "safe-mode-no-rollout-progress" in refused_by(decide(act("advance_rollout"), sm, [], NOW))
    assert "safe-mode-no-chaos" in refused_by(decide(act("chaos"), snap(safe_mode=True), [], NOW))
    assert "safe-mode-no-chaos" in refused_by(
        decide(act("chaos", scope="operator", requested_by="operator"), snap(safe_mode=True), [], NOW))
    assert refused_by(decide(act("flip"), sm, [], NOW)) == {"safe-mode-flip-to-known-good"}
    lkg = snap(safe_mode=True, known_good=frozenset({"v1", "v2"}))
    assert decide(act("flip"), lkg, [], NOW).allowed
    for a in [act("alert"), act("abort_rollout"), act("hold_rollout"), act("quarantine")]:
        assert decide(a, sm, [], NOW).allowed


def flips(*ages, kind="flip", by="operator", playbook=None, target="standby"):
    return [ActionRecord(ts=NOW - a, kind=kind, requested_by=by, playbook=playbook, target=target) for a in ages]


def test_flip_rate_limit_counts_every_requester_in_a_sliding_window():
    cfg = PolicyConfig(flip_max_per_hour=3)
    op = act("flip", scope="operator", requested_by="operator")
    assert refused_by(decide(op, snap(), flips(10, 100, 3000), NOW, cfg)) == {"flip-rate-limit"}
    assert decide(op, snap(), flips(10, 100, 3600), NOW, cfg).allowed  # the oldest just left the window
    assert refused_by(decide(op, snap(), flips(10, 100, -5), NOW, cfg)) == {"flip-rate-limit"}  # future counts
    assert refused_by(decide(op, snap(), [], NOW, PolicyConfig(flip_max_per_hour=0))) == {"flip-rate-limit"}


def test_quarantine_rate_limit():
    cfg = PolicyConfig(quarantine_max_per_hour=2)
    h = flips(1, 2, kind="quarantine", by="rollout", target="v0")
    a = act("quarantine", scope="rollout", requested_by="rollout")
    assert refused_by(decide(a, snap(), h, NOW, cfg)) == {"quarantine-rate-limit"}
    assert decide(a, snap(), h[:1], NOW, cfg).allowed


def test_playbook_cooldown_holds_back_a_new_firing_but_not_the_rest_of_this_one():
    h = [ActionRecord(ts=NOW - 30, kind="abort_rollout", requested_by="playbook", playbook="pb", firing="f1",
                      target="v2")]
    # the same firing's next action goes through
    assert decide(act("quarantine", firing="f1"), snap(), h, NOW).allowed
    # a new firing within the default 60 s cooldown does not, whatever its target
    for a in [act("quarantine", firing="f2"), act("quarantine", target_bundle="v3"), act("abort_rollout")]:
        d = decide(a, snap(), h, NOW)
        assert refused_by(d) == {"playbook-cooldown"}, a
    new = act("quarantine", firing="f2")
    assert decide(new.model_copy(update={"cooldown_s": 20.0}), snap(), h, NOW).allowed  # the playbook's own
    assert decide(new, snap(), h, NOW, PolicyConfig(playbook_cooldown_s=10)).allowed
    assert decide(act("quarantine", playbook="other"), snap(), h, NOW).allowed
    # an earlier alert does not start a cooldown
    alert_only = [h[0].model_copy(update={"kind": "alert"})]
    assert decide(new, snap(), alert_only, NOW).allowed


def test_playbook_max_firings_per_hour_counts_firings_not_actions():
    def rec(age, kind, firing, by="playbook"):
        return ActionRecord(ts=NOW - age, kind=kind, requested_by=by, playbook="pb" if by == "playbook" else None,
                            firing=firing, target="v2")
    h = [rec(300, "abort_rollout", "f1"), rec(300, "quarantine", "f1"),  # one firing, two actions
         rec(200, "hold_rollout", "f2"),
         rec(100, "alert", "f3"), rec(90, "alert", None),  # alert-only firings do not count
         rec(80, "hold_rollout", None, by="operator")]
    a = act("abort_rollout", firing="f4", max_actions_per_hour=2)
    assert refused_by(decide(a, snap(), h, NOW)) == {"playbook-max-firings-per-hour"}
    assert decide(a.model_copy(update={"max_actions_per_hour": 3}), snap(), h, NOW).allowed
    # the rest of an already counted firing still goes through at the cap
    assert decide(act("quarantine", firing="f2", max_actions_per_hour=2), snap(), h, NOW).allowed
    # actions without a firing id are firings of their own
    loose = [rec(300, "abort_rollout", None), rec(300, "quarantine", None)]
    assert refused_by(decide(act("hold_rollout", max_actions_per_hour=2), snap(), loose, NOW)) \
        == {"playbook-max-firings-per-hour"}
    assert refused_by(decide(act("abort_rollout"), snap(), h, NOW, PolicyConfig(playbook_max_actions_per_hour=2))) \
        == {"playbook-max-firings-per-hour"}
    # alerts stay allowed past the cap
    assert decide(act("alert", max_actions_per_hour=0), snap(), h, NOW).allowed


def test_playbook_scopes_map_to_kernel_scopes():
    assert scope_for_playbook("standby") == "canary"
    assert scope_for_playbook(None, rollout_step=True) == "canary"
    assert scope_for_playbook("active") == "active"
    assert scope_for_playbook(None) == "host"


def test_every_shipped_playbook_action_is_allowed_in_its_scope():
    """The kernel's allow-list and the shipped playbooks agree (the lint checks the playbooks' own rules)."""
    from pathlib import Path

    from samantha.playbooks import load_playbook

    files = sorted(Path(__file__).resolve().parents[2].joinpath("playbooks").glob("*.yaml"))
    assert files
    for f in files:
        pb = load_playbook(f)
        scope = scope_for_playbook(pb.when.scope.slot, pb.when.scope.rollout_step is not None)
        extra = pb.limits.on_inconclusive_for.then if pb.limits.on_inconclusive_for else []
        for a in [*pb.then, *extra]:
            assert a.action in SCOPE_ALLOWS[scope], (f.name, scope, a.action)


def test_all_violations_are_reported_with_reasons():
    sm = snap(safe_mode=True, standby=CANARY.model_copy(update={"healthy": False}), quarantined=frozenset({"v2"}))
    d = decide(act("flip", scope="canary"), sm, flips(1, 2, 3), NOW)
    assert refused_by(d) == {"scope-allow-list", "flip-target-serviceable", "flip-not-quarantined",
                             "safe-mode-flip-to-known-good", "flip-rate-limit"}
    assert d.explain().startswith("refused: [scope-allow-list]")


@pytest.mark.parametrize("kw,msg", [
    ({"kind": "quarantine", "scope": "canary", "requested_by": "rollout"}, "target_bundle"),
    ({"kind": "alert", "scope": "host", "requested_by": "operator"}, "severity"),
    ({"kind": "flip", "scope": "active", "requested_by": "playbook"}, "playbook"),
    ({"kind": "flip", "scope": "active", "requested_by": "operator", "playbook": "x"}, "playbook"),
    ({"kind": "flip", "scope": "active", "requested_by": "operator", "target_slot": "active"}, "standby"),
    ({"kind": "reboot", "scope": "active", "requested_by": "operator"}, "kind"),
    ({"kind": "flip", "scope": "everything", "requested_by": "operator"}, "scope"),
])
def test_malformed_actions_are_rejected_naming_the_field(kw, msg):
    with pytest.raises(ValidationError) as ei:
        ProposedAction(reason="x", **kw)
    assert msg in str(ei.value)


def test_non_finite_time_is_refused():
    with pytest.raises(ValueError):
        decide(act("flip"), snap(), [], float("nan"))
    with pytest.raises(ValidationError):
        ActionRecord(ts=float("inf"), kind="flip", requested_by="operator")


def test_policy_config_lives_in_samantha_config():
    assert SamanthaConfig().policy == PolicyConfig()
    with pytest.raises(ValidationError):
        PolicyConfig(flip_max_per_hour=-1)


def test_a_stale_alert_is_still_sent():
    stale = act("alert", target_slot="active", target_bundle="v0")
    assert decide(stale, snap(safe_mode=True), [], NOW).allowed
