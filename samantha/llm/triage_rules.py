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


def candidate_causes(incident: TriageInput) -> list[ProbableCause]:
    """Every cause the breached verdicts allow (not only the first rule's): what the verifier lets the
    LLM name, and the hypotheses it may rank. Ordered as the rules prefer them."""
    breached = [v for v in incident.verdicts if v.breached]
    kinds = {v.kind for v in breached}
    out: list[ProbableCause] = [rule_cause(incident).cause]
    if "policy" in kinds:
        out.append(ProbableCause.policy_expired)
    if "availability" in kinds:
        out.append(ProbableCause.slot_down)
    if "resource" in kinds:
        out.append(ProbableCause.resource_exhaustion)
    if "drift" in kinds:
        out.append(ProbableCause.input_drift)
    serving = kinds & {"error_rate", "latency", "divergence"}
    if serving:
        out.append(ProbableCause.bad_bundle)  # a bundle serves every one of these requests
        if kinds & {"error_rate", "latency"}:
            out.append(ProbableCause.network_fault)
        if "error_rate" in kinds:
            out.append(ProbableCause.slot_down)  # a dying slot process answers errors first
    return list(dict.fromkeys(c for c in out if c is not ProbableCause.unknown)) or [ProbableCause.unknown]


def is_ambiguous(incident: TriageInput) -> bool:
    """The rules leave it open: several causes fit and no rule matched with confidence."""
    return len(candidate_causes(incident)) > 1 and rule_cause(incident).confidence <= 0.5
