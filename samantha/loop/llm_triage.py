"""The local LLM as the steady-state graph's advisory triage (a `TriageFn` for the Triager thread).

It runs on the Triager's worker thread, after the fast path has decided and acted, so it can
never delay or change an action. Each incident becomes a `TriageInput` (verdicts, evidence,
what the playbook already did); the LLM's typed `triage()` answers (or its rule fallback when
the model is absent, slow or wrong); every call record goes to the audit log; the summary and
probable cause are attached to the incident (by the Triager) and to the incident's alert.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from samantha.llm.engine import LlmEngine
from samantha.llm.triage import triage
from samantha.llm.triage_input import TriageInput, VerdictEvidence
from samantha.loop.triage import rule_triage

log = logging.getLogger(__name__)

_KINDS = {"errors": "error_rate", "error": "error_rate", "latency": "latency", "divergence": "divergence"}


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
    verdicts = []
    for v in list((incident.get("evidence") or {}).values())[:8]:
        values = v.get("values") or {}
        slot = v.get("slot") if v.get("slot") in ("active", "standby") else None
        verdicts.append(VerdictEvidence(
            gate=str(v.get("gate") or "gate")[:100], kind=_verdict_kind(v), slot=slot,  # type: ignore[arg-type]
            metric=str(values.get("metric") or values.get("signal") or "")[:100] or None,
            observed=_num(values.get("observed", values.get("value"))), threshold=_num(values.get("threshold")),
            detail=str(v.get("reason") or "")[:300]))
    key = str(incident.get("key") or "")
    return TriageInput(incident_id=incident["id"], severity=incident.get("severity") or "warning",
                       verdicts=verdicts, fast_path_action=("playbooks " + ", ".join(incident["playbooks"]))[:200]
                       if incident.get("playbooks") else None,
                       active_bundle=key.split(":", 1)[1] if key.startswith("active:") else None,
                       standby_bundle=key.split(":", 1)[1] if key.startswith("canary:") else None)


def llm_triage_fn(engine: LlmEngine, audit: Any,
                  annotate: Callable[[str, str, str], None]) -> Callable[[dict[str, Any]], tuple[str, str, dict]]:
    """A TriageFn: LLM triage of one incident; audit record of the call; the alert annotated."""

    def fn(incident: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
        try:
            inp = triage_input(incident)
        except Exception as e:  # an incident the input model cannot hold: the rules still triage it
            log.warning("triage input for %s: %s", incident.get("id"), e)
            return rule_triage(incident)
        res = triage(inp, engine)
        rec = res.record.model_dump(mode="json") if res.record is not None else None
        audit.append("llm_call", {"task": "triage", "incident_id": incident["id"], "source": res.source,
                                  "outcome": res.llm_outcome, "error": res.llm_error, "record": rec,
                                  "cause": res.cause.value, "suggested_action": res.suggested_action,
                                  "dropped": res.dropped})
        annotate(incident["id"], res.summary, res.cause.value)
        return res.summary, res.cause.value, {
            "method": res.source, "confidence": res.confidence, "suggested_action": res.suggested_action,
            "advisory": True, "rule_cause": res.rule_cause.value, "llm_outcome": res.llm_outcome,
            "llm_error": res.llm_error, "latency_s": rec["latency_s"] if rec else None,
            "model": rec.get("model") if rec else None}

    return fn
