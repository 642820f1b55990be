"""The local LLM as the steady-state graph's advisory triage (a `TriageFn` for the Triager thread).

It runs on the Triager's worker thread, after the fast path has decided and acted, so it can
never delay or change an action. Each incident becomes a `TriageInput` (verdicts, evidence,
what the playbook already did); the LLM's typed `triage()` answers (or its rule fallback when
the model is absent, slow or wrong). The verifier (samantha/llm/verifier.py) holds its words
against the evidence: the rules' cause stays the cause unless the rules are ambiguous and the
verified LLM choice breaks the tie; text that fails is recorded with its reason and never shown.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from samantha.llm.engine import LlmEngine
from samantha.llm.triage import triage
from samantha.llm.triage_input import TriageInput, VerdictEvidence
from samantha.llm.verifier import verified_triage
from samantha.loop.triage import rule_triage
from samantha.reporting.incident_summary import subject

log = logging.getLogger(__name__)

_KINDS = {"errors": "error_rate", "error": "error_rate", "failure": "error_rate", "latency": "latency",
          "queue_us": "latency", "compute_us": "latency", "divergence": "divergence"}


def _verdict_kind(v: dict[str, Any]) -> str:
    if v.get("kind") == "drift":
        return "drift"
    text = f"{v.get('gate', '')} {(v.get('values') or {}).get('metric', '')} {(v.get('values') or {}).get('signal', '')}"
    if "host" in text:
        return "resource"
    return next((k for word, k in _KINDS.items() if word in text), "other")


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and not isinstance(x, bool) else None


def triage_input(incident: dict[str, Any]) -> TriageInput:
    """What the model sees of an incident record (free text from telemetry stays data: the prompt quotes it)."""
    role, bundle = subject(incident)
    verdicts = []
    for v in list((incident.get("evidence") or {}).values())[:8]:
        values = v.get("values") or {}
        slot = v.get("slot") if v.get("slot") in ("active", "standby") else (role if role in ("active", "standby")
                                                                            else None)
        verdicts.append(VerdictEvidence(
            gate=str(v.get("gate") or "gate")[:100], kind=_verdict_kind(v), slot=slot,  # type: ignore[arg-type]
            bundle=bundle if slot == role else None,
            metric=str(values.get("metric") or values.get("signal") or "")[:100] or None,
            observed=_num(values.get("observed", values.get("value"))),
            threshold=_num(values.get("threshold", values.get("bound"))),
            detail=str(v.get("reason") or "")[:300]))
    acted = [a for a in ("flip", "quarantine", "abort_rollout", "safe_mode", "hold_rollout")
             if any(a in str(p) for p in incident.get("playbooks") or [])]
    return TriageInput(incident_id=incident["id"], severity=incident.get("severity") or "warning",
                       verdicts=verdicts, fast_path_action=("playbooks " + ", ".join(incident["playbooks"]))[:200]
                       if incident.get("playbooks") and not acted else (acted[0] if acted else None),
                       active_bundle=bundle if role == "active" else None,
                       standby_bundle=bundle if role == "standby" else None)


def llm_triage_fn(engine: LlmEngine, audit: Any, annotate: Callable[[str, str, str], None],
                  actions: Callable[[str], dict[str, str]] | None = None) -> Callable[[dict[str, Any]],
                                                                                     tuple[str, dict]]:
    """A TriageFn: LLM triage of one incident, verified against its evidence; an audit record of the
    call (with the verifier's refusal, if any); the alert annotated with verified advisory text only."""

    def fn(incident: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        try:
            inp = triage_input(incident)
        except Exception as e:  # an incident the input model cannot hold: the rules still triage it
            log.warning("triage input for %s: %s", incident.get("id"), e)
            return rule_triage(incident)
        res = triage(inp, engine)
        outcomes = actions(incident["id"]) if actions is not None else {}
        detail = verified_triage(inp, res, outcomes)
        rec = res.record
        if rec is not None and detail["rejected"]:
            rec = rec.model_copy(update={"rejected": detail["rejected"]})
        audit.append("llm_call", {"task": "triage", "incident_id": incident["id"], "source": res.source,
                                  "outcome": res.llm_outcome, "error": res.llm_error,
                                  "record": rec.model_dump(mode="json") if rec else None,
                                  "cause": detail["cause"], "llm_cause": detail["llm_cause"],
                                  "rejected": detail["rejected"], "suggested_action": res.suggested_action,
                                  "dropped": res.dropped})
        if detail["advisory"]:
            annotate(incident["id"], detail["advisory"], detail["cause"])
        return detail["cause"], {**detail, "advisory_label": "advisory (LLM, checked against the evidence)",
                                 "confidence": res.confidence, "rule_cause": res.rule_cause.value,
                                 "llm_outcome": res.llm_outcome, "llm_error": res.llm_error,
                                 "latency_s": rec.latency_s if rec else None, "model": rec.model if rec else None}

    return fn
