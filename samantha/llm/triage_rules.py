"""Deterministic probable cause from verdicts: the fallback when the LLM is absent, slow or wrong.

An ordered list of rules over breached verdicts; the first that matches names the
cause. Pure, so it is cheap enough to run on every incident alongside the LLM.
"""

from __future__ import annotations

from dataclasses import dataclass

from samantha.core.domain import ProbableCause
from samantha.llm.triage_input import TriageInput

RECENT_DEPLOY_S = 900.0  # a deploy within this window makes the new bundle the first suspect


@dataclass(frozen=True)
class RuleCause:
    cause: ProbableCause
    rule: str
    confidence: float
    explanation: str


def rule_cause(incident: TriageInput) -> RuleCause:
    breached = [v for v in incident.verdicts if v.breached]
    kinds = {v.kind for v in breached}
    slots = {v.slot for v in breached if v.slot}
    recent_deploy = any(c.kind in ("deploy", "rollout_step") and c.age_s <= RECENT_DEPLOY_S
                        for c in incident.changes)
    if not breached:
        return RuleCause(ProbableCause.unknown, "no_breach", 0.2, "no gate is breached")
    if "policy" in kinds:
        return RuleCause(ProbableCause.policy_expired, "policy_gate", 0.9, "a policy gate is breached")
    if "availability" in kinds:
        return RuleCause(ProbableCause.slot_down, "availability_gate", 0.8, "a slot is not serving")
    if "resource" in kinds:
        return RuleCause(ProbableCause.resource_exhaustion, "resource_gate", 0.7, "a resource gate is breached")
    serving = kinds & {"error_rate", "latency", "divergence"}
    if "divergence" in kinds or (serving and slots == {"standby"}) or (serving and recent_deploy and slots != {"active", "standby"}):
        return RuleCause(ProbableCause.bad_bundle, "canary_regression", 0.7,
                         "the new bundle's slot regressed" + (" after a recent deploy" if recent_deploy else ""))
    if "drift" in kinds:
        return RuleCause(ProbableCause.input_drift, "drift_gate", 0.6, "the input distribution moved")
    if serving and (slots == {"active", "standby"} or ("latency" in kinds and not recent_deploy)):
        return RuleCause(ProbableCause.network_fault, "both_slots_or_latency", 0.5,
                         "serving degraded without a deploy to blame")
    return RuleCause(ProbableCause.unknown, "no_rule", 0.2, "no rule matched the breached gates")
