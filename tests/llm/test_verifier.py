"""The verifier of LLM claims (pure logic): faithful text passes; any bundle, gate, number, slot or
action that is not in the evidence is refused, and so is text that contradicts an action's outcome."""

from __future__ import annotations

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from samantha.core.domain import ProbableCause
from samantha.llm.triage import TriageResult
from samantha.llm.triage_input import TriageInput, VerdictEvidence
from samantha.llm.verifier import ACTION_WORDS, PLAIN_HYPHENATED, Evidence, verified_triage, verify

WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=2, max_size=7)
NAME = st.lists(WORD, min_size=2, max_size=3).map("-".join).filter(lambda n: n not in PLAIN_HYPHENATED)
VALUE = st.floats(0.001, 5000, allow_nan=False).map(lambda x: round(x, 3))


@st.composite
def incidents(draw: st.DrawFn) -> tuple[TriageInput, dict[str, str]]:
    names = draw(st.lists(NAME, min_size=3, max_size=5, unique=True))
    bundle, other, *gates = names
    verdicts = [VerdictEvidence(gate=g, kind="error_rate", slot="active", bundle=bundle,
                                observed=draw(VALUE), threshold=draw(VALUE)) for g in gates]
    inp = TriageInput(incident_id="i", active_bundle=bundle, standby_bundle=other, verdicts=verdicts)
    return inp, {"flip": "verified", "alert": "done"}


def faithful(inp: TriageInput) -> str:
    v = inp.verdicts[0]
    return (f"{v.gate} breached on {inp.active_bundle} in the active slot: {v.observed:.2f} against "
            f"{v.threshold:g}. Traffic was flipped to {inp.standby_bundle} and it worked; an alert went out.")


def reasons(text: str, inp: TriageInput, actions: dict[str, str], cause: ProbableCause | None = None) -> list[str]:
    return verify(text, cause, Evidence.of(inp, actions)).reasons


@settings(max_examples=200, deadline=None)
@given(incidents())
def test_faithful_text_passes(case: tuple[TriageInput, dict[str, str]]) -> None:
    inp, actions = case
    assert reasons(faithful(inp), inp, actions, ProbableCause.bad_bundle) == []


@settings(max_examples=200, deadline=None)
@given(incidents(), NAME, st.sampled_from(["bundle", "gate"]))
def test_a_bundle_or_gate_not_in_the_evidence_is_refused(case, invented: str, what: str) -> None:
    inp, actions = case
    ev = Evidence.of(inp, actions)
    assume(invented not in ev.bundles | ev.gates)
    got = reasons(f"{faithful(inp)} The {what} {invented} is also involved.", inp, actions)
    assert any(r.startswith("identifier:") and invented in r for r in got), got


@settings(max_examples=200, deadline=None)
@given(incidents(), st.floats(0, 100000, allow_nan=False).map(lambda x: round(x, 2)), st.booleans())
def test_a_number_not_in_the_evidence_is_refused(case, x: float, percent: bool) -> None:
    inp, actions = case
    ev = Evidence.of(inp, actions)
    text = f"{x:.2f}"
    assume(not ev.knows_number(float(text), 2, percent))
    got = reasons(f"{faithful(inp)} The rate reached {text}{'%' if percent else ''}.", inp, actions)
    assert any(r.startswith("number:") and text in r for r in got), got


@settings(max_examples=100, deadline=None)
@given(incidents(), st.sampled_from(sorted(set(ACTION_WORDS) - {"flip", "alert"})))
def test_an_action_not_taken_is_refused(case, kind: str) -> None:
    inp, actions = case
    word = ACTION_WORDS[kind][0]
    got = reasons(f"{faithful(inp)} Samantha will {word} it next.", inp, actions)
    assert f"action: no {kind} was taken on this incident" in got, got


@settings(max_examples=100, deadline=None)
@given(incidents(), st.sampled_from(["The flip failed.", "The flip did not work.", "Flipping had no effect."]))
def test_text_that_contradicts_a_recorded_outcome_is_refused(case, claim: str) -> None:
    inp, actions = case
    got = reasons(f"{faithful(inp)} {claim}", inp, actions)
    assert any(r.startswith("contradiction: the flip is recorded as verified") for r in got), got
    # the same words are true when the ledger says the flip failed
    assert not any(r.startswith("contradiction") for r in reasons(claim, inp, {**actions, "flip": "failed"}))


def test_slot_and_cause_claims_need_evidence() -> None:
    inp = TriageInput(incident_id="i", standby_bundle="resnet-v8", verdicts=[
        VerdictEvidence(gate="canary-errors", kind="error_rate", slot="standby", bundle="resnet-v8",
                        observed=0.19, threshold=0.02)])
    assert reasons("canary-errors on resnet-v8: 19% of requests failed.", inp, {}) == []
    assert "slot: the active slot is not part of the evidence" in reasons("The active slot is fine.", inp, {})
    got = reasons("A disk is full on resnet-v8.", inp, {}, ProbableCause.resource_exhaustion)
    assert any(r.startswith("cause: resource_exhaustion is not one") for r in got)
    assert any("names resource_exhaustion" in r for r in got)


def _llm(inp: TriageInput, cause: ProbableCause, summary: str) -> TriageResult:
    return TriageResult(incident_id=inp.incident_id, cause=cause, confidence=0.6, summary=summary,
                        allowed_actions=["alert"], source="llm", rule_cause=ProbableCause.unknown, rule="x")


def test_the_rules_cause_stays_unless_ambiguous_and_the_llm_is_verified() -> None:
    clear = TriageInput(incident_id="c", standby_bundle="resnet-v8", canary_weight=0.05, verdicts=[
        VerdictEvidence(gate="canary-errors", kind="error_rate", slot="standby", bundle="resnet-v8",
                        observed=0.19, threshold=0.02)])
    d = verified_triage(clear, _llm(clear, ProbableCause.network_fault, "canary-errors failed on resnet-v8."), {})
    assert d["cause"] == "bad_bundle" and not d["ambiguous"] and d["advisory"]  # shown, but the rules decide
    vague = TriageInput(incident_id="v", active_bundle="resnet-v7", verdicts=[
        VerdictEvidence(gate="active-errors", kind="error_rate", slot="active", bundle="resnet-v7",
                        observed=0.4, threshold=0.2)])
    d = verified_triage(vague, _llm(vague, ProbableCause.slot_down, "active-errors at 0.4 on resnet-v7."), {})
    assert d["ambiguous"] and d["cause"] == "unknown" and d["advisory"]  # an enum alone breaks no tie
    backed = "active-errors at 0.4 on resnet-v7: the slot process keeps crashing."
    d = verified_triage(vague, _llm(vague, ProbableCause.slot_down, backed), {})
    assert d["cause"] == "slot_down" and d["method"] == "llm_tiebreak"
    d = verified_triage(vague, _llm(vague, ProbableCause.slot_down, "The cause fits best, for transparency."), {})
    assert d["rejected"] == ["grounded: the text names no gate, bundle or number of the evidence"]
    d = verified_triage(vague, _llm(vague, ProbableCause.slot_down, "resnet-v9 crashed after 12 s."), {})
    assert d["cause"] == "unknown" and d["advisory"] is None  # refused: never shown, no tie-break
    assert any("resnet-v9" in r for r in d["rejected"]) and any("12" in r for r in d["rejected"])
