"""Pure triage logic: the rule-based cause, and the allow-list applied after decoding (unit tests)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from samantha.core.config import LlmConfig
from samantha.core.domain import ProbableCause
from samantha.llm.engine import LlmReply
from samantha.llm.records import LlmCallRecord
from samantha.llm.triage import TriageAnswer, triage
from samantha.llm.triage_input import RecentChange, TriageInput, VerdictEvidence
from samantha.llm.triage_rules import rule_cause

verdicts = st.builds(VerdictEvidence, gate=st.text(min_size=1, max_size=20),
                     kind=st.sampled_from(["error_rate", "latency", "divergence", "drift", "resource",
                                           "availability", "policy", "other"]),
                     breached=st.booleans(), slot=st.none() | st.sampled_from(["active", "standby"]))
changes = st.builds(RecentChange, age_s=st.floats(0, 1e6),
                    kind=st.sampled_from(["deploy", "rollout_step", "flip", "config", "policy", "fault", "other"]))


@given(st.lists(verdicts, max_size=6), st.lists(changes, max_size=4))
def test_rules_always_name_a_cause(vs, cs) -> None:
    rc = rule_cause(TriageInput(incident_id="i", verdicts=vs, changes=cs))
    assert isinstance(rc.cause, ProbableCause) and 0 <= rc.confidence <= 1 and rc.rule


def test_rules_read_the_verdicts() -> None:
    def cause(*vs, changes=()):
        return rule_cause(TriageInput(incident_id="i", verdicts=list(vs), changes=list(changes))).cause

    assert cause(VerdictEvidence(gate="g", kind="error_rate", slot="standby")) is ProbableCause.bad_bundle
    both = [VerdictEvidence(gate="a", kind="latency", slot="active"), VerdictEvidence(gate="b", kind="latency", slot="standby")]
    assert cause(*both) is ProbableCause.network_fault
    assert cause(VerdictEvidence(gate="p", kind="policy"), *both) is ProbableCause.policy_expired
    assert cause(VerdictEvidence(gate="g", kind="other", breached=False)) is ProbableCause.unknown


class _FakeEngine:
    """Stands in for a decoder that let an out-of-set action through (the grammar prevents it for real)."""

    config = LlmConfig()

    def __init__(self, action: str) -> None:
        self.action = action

    def complete(self, request):
        rec = LlmCallRecord(ts=0, task="triage", template="triage.v1", template_sha256="x", model="m",
                            model_sha256="y", prompt_chars=request.prompt.chars, latency_s=0.1, outcome="ok")
        return LlmReply(outcome="ok", record=rec, value=TriageAnswer(
            cause="bad_bundle", confidence="high", suggested_action=self.action, summary="The canary fails"))


def test_action_outside_the_allowed_set_is_dropped_and_recorded() -> None:
    inc = TriageInput(incident_id="i", verdicts=[VerdictEvidence(gate="g", kind="error_rate", slot="standby")])
    res = triage(inc, _FakeEngine("delete_all_bundles"), allowed_actions=["alert"])
    assert res.source == "llm" and res.suggested_action is None
    assert res.dropped == ["suggested_action=delete_all_bundles"] and res.record.dropped == res.dropped
    assert triage(inc, _FakeEngine("alert"), allowed_actions=["alert"]).suggested_action == "alert"
    assert triage(inc, _FakeEngine("none"), allowed_actions=["alert"]).suggested_action is None


def test_broken_prompt_directory_degrades_to_rules(tmp_path: Path) -> None:
    eng = _FakeEngine("alert")
    eng.config = LlmConfig(prompts_dir=str(tmp_path))
    res = triage(TriageInput(incident_id="i"), eng)
    assert res.source == "rules" and res.llm_outcome == "error" and "no template" in res.llm_error
