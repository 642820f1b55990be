"""Incident summary for the operator (after the fact): headline, what happened, what was done.

`summarize()` never raises; without a valid LLM answer it returns a plain
summary assembled from the incident's own fields (`source="rules"`).
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from samantha.llm.engine import LlmEngine, LlmRequest
from samantha.llm.prompts import load_template, render
from samantha.llm.records import LlmCallRecord, Outcome
from samantha.llm.schemas import SUMMARY_FIELDS, SUMMARY_MAX_TOKENS, plain_pattern, summary_schema

log = logging.getLogger(__name__)

TASK = "summary"


class SummaryAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    headline: str = Field(pattern=plain_pattern(*SUMMARY_FIELDS["headline"]))
    what_happened: str = Field(pattern=plain_pattern(*SUMMARY_FIELDS["what_happened"]))
    what_was_done: str = Field(pattern=plain_pattern(*SUMMARY_FIELDS["what_was_done"]))


class IncidentSummary(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    headline: str
    what_happened: str
    what_was_done: str
    source: Literal["llm", "rules"]
    llm_outcome: Outcome | None = None
    llm_error: str | None = None
    record: LlmCallRecord | None = None


def summarize(incident: dict[str, Any], actions: list[str], engine: LlmEngine | None) -> IncidentSummary:
    """Summarise an incident (any JSON-like record) and the actions taken. Never raises."""
    fallback = dict(headline=f"Incident {incident.get('incident_id', '?')}",
                    what_happened="; ".join(f"{v.get('gate')} breached" for v in incident.get("verdicts", [])
                                            if isinstance(v, dict))[:240] or "see the incident record",
                    what_was_done=", ".join(actions)[:120] or "no action")
    if engine is None:
        return IncidentSummary(**fallback, source="rules", llm_error="no llm engine")
    try:
        prompt = render(load_template(TASK, directory=engine.config.prompts_dir),
                        data={"incident": incident, "actions_taken": actions})
        reply = engine.complete(LlmRequest(task=TASK, prompt=prompt, schema=summary_schema(), output=SummaryAnswer,
                                           max_tokens=SUMMARY_MAX_TOKENS))
        if reply.ok and reply.value is not None:
            return IncidentSummary(**reply.value.model_dump(), source="llm", llm_outcome="ok", record=reply.record)
        return IncidentSummary(**fallback, source="rules", llm_outcome=reply.outcome,
                               llm_error=reply.record.error, record=reply.record)
    except Exception as e:
        log.exception("summary failed")
        return IncidentSummary(**fallback, source="rules", llm_outcome="error", llm_error=f"{type(e).__name__}: {e}")
