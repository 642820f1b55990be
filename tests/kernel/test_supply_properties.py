"""The supply-chain intake rule, pure: property tests over every combination of facts."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from samantha.core.supply import IntakeFacts, SignatureFacts, SupplyHold, TufFacts
from samantha.kernel.supply import RULES, judge_intake, judge_module, stale_trust

TUF = ["ok", "absent", "rollback", "frozen", "expired", "below_threshold", "not_listed", "tampered", "malformed"]
SIG = ["ok", "malformed", "unknown_key", "bad_signature", "tampered", "expired"]

facts = st.builds(
    IntakeFacts,
    tuf_required=st.booleans(),
    tuf=st.one_of(st.none(), st.builds(TufFacts, outcome=st.sampled_from(TUF), role=st.sampled_from(
        ["root", "timestamp", "snapshot", "targets", "target"]), reason=st.text(max_size=20))),
    signature=st.builds(SignatureFacts, outcome=st.sampled_from(SIG), reason=st.text(max_size=20)),
    hold=st.one_of(st.none(), st.builds(SupplyHold, reason=st.just("frozen earlier"), since=st.floats(0, 2e9))),
)


@given(facts)
def test_admitted_only_when_every_check_passed(f: IntakeFacts) -> None:
    d = judge_intake(f)
    tuf_ok = f.tuf is not None and f.tuf.outcome == "ok"
    tuf_absent = f.tuf is None or f.tuf.outcome == "absent"
    expected = (f.signature.outcome == "ok" and (tuf_ok or (tuf_absent and not f.tuf_required and f.hold is None)))
    assert d.allowed == expected
    if not d.allowed:
        assert d.rule in RULES and d.kind != "ok" and d.reason


@given(facts)
def test_frozen_or_expired_metadata_holds_the_cube(f: IntakeFacts) -> None:
    d = judge_intake(f)
    stale = f.tuf is not None and f.tuf.outcome in ("frozen", "expired")
    assert d.safe_mode == stale
    if stale:
        assert not d.allowed and d.rule == "tuf-fresh"


@given(facts)
def test_only_fresh_verified_metadata_lifts_a_hold(f: IntakeFacts) -> None:
    d = judge_intake(f)
    if d.hold == "clear":
        assert f.hold is not None and f.tuf is not None and f.tuf.outcome == "ok"
    if f.hold is not None and not (f.tuf is not None and f.tuf.outcome == "ok"):
        assert not d.allowed and d.hold in ("keep", "set")


@given(facts)
def test_tuf_is_judged_before_the_signature(f: IntakeFacts) -> None:
    d = judge_intake(f)
    if f.tuf is not None and f.tuf.outcome not in ("ok", "absent"):
        assert d.rule in ("tuf-fresh", "tuf-verified")


@given(st.dictionaries(st.sampled_from(["root", "timestamp", "snapshot", "targets"]),
                       st.one_of(st.none(), st.floats(0, 2e9))), st.floats(0, 2e9))
def test_trusted_metadata_past_expiry_holds_the_supply(expires, now) -> None:
    reason = stale_trust(expires, now)
    gone = [r for r, e in expires.items() if e is not None and now >= e]
    assert (reason is not None) == bool(gone)
    if reason:
        assert reason.startswith("tuf-stale") and all(r in reason for r in gone)


module_tuf = st.one_of(st.none(), st.builds(TufFacts, outcome=st.sampled_from(TUF), role=st.sampled_from(
    ["root", "timestamp", "snapshot", "targets", "target"]), reason=st.text(max_size=20)))


@given(st.booleans(), module_tuf)
def test_a_policy_module_passes_tuf_only_when_listed_under_fresh_metadata(required: bool, tuf) -> None:
    d = judge_module(required, tuf)
    assert d.hold == "keep"  # a refused module never holds the supply: the one in force keeps governing
    if not required:
        assert d.allowed  # no pinned root: behaviour unchanged (signature, version, expiry only)
        return
    assert d.allowed == (tuf is not None and tuf.outcome == "ok")
    if not d.allowed:
        assert d.rule == "module-tuf" and d.rule in RULES and d.kind.startswith("tuf_")
        outcome = "absent" if tuf is None else tuf.outcome
        assert d.kind == f"tuf_{outcome}" and d.reason.startswith("tuf ")
