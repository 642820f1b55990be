"""Incident triage: probable cause, confidence, operator summary, advisory action.

`triage()` always returns a typed `TriageResult` and never raises. The LLM's
answer is used when it is valid; otherwise the deterministic rule-based cause
fills in (`source="rules"`). The suggested action is advisory: policy decides,
and the fast path never waits for it. An action outside the allowed set cannot
be decoded (schema enum) and would be dropped and recorded if it ever were.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from samantha.core.domain import ProbableCause
from samantha.llm.engine import LlmEngine, LlmRequest
from samantha.llm.prompts import PromptError, RenderedPrompt, load_template, render
from samantha.llm.records import LlmCallRecord, Outcome
from samantha.llm.schemas import (
    CONFIDENCE_LEVELS,
    DEFAULT_ACTIONS,
    NO_ACTION,
    SUMMARY_MAX_CHARS,
    SUMMARY_PATTERN,
    TRIAGE_MAX_TOKENS,
    triage_schema,
)
from samantha.llm.triage_input import TriageInput
from samantha.llm.triage_rules import rule_cause

log = logging.getLogger(__name__)

TASK = "triage"


class TriageAnswer(BaseModel):
    """The decoded LLM output, before the allow-list check."""

    model_config = ConfigDict(extra="forbid")

    cause: ProbableCause
    confidence: Literal["low", "medium", "high"]
    suggested_action: str = Field(min_length=1, max_length=64)
    summary: str = Field(pattern=SUMMARY_PATTERN)


class TriageResult(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    incident_id: str
    cause: ProbableCause
    confidence: float = Field(ge=0, le=1)
    summary: str
    suggested_action: str | None = Field(None, description="advisory only; always inside allowed_actions")
    allowed_actions: list[str]
    source: Literal["llm", "rules"]
    rule_cause: ProbableCause
    rule: str
    llm_outcome: Outcome | None = None
    llm_error: str | None = None
    dropped: list[str] = Field(default_factory=list, description="LLM output refused by the allow-list")
    record: LlmCallRecord | None = None


def _clean_summary(text: str) -> str:
    return " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())[:SUMMARY_MAX_CHARS]


def _fallback(incident: TriageInput, allowed: list[str], outcome: Outcome | None, error: str | None,
              record: LlmCallRecord | None = None, dropped: list[str] | None = None) -> TriageResult:
    rc = rule_cause(incident)
    return TriageResult(
        incident_id=incident.incident_id, cause=rc.cause, confidence=rc.confidence,
        summary=f"Probable cause {rc.cause.value} (rule {rc.rule}): {rc.explanation}.",
        suggested_action=None, allowed_actions=allowed, source="rules", rule_cause=rc.cause, rule=rc.rule,
        llm_outcome=outcome, llm_error=error, dropped=dropped or [], record=record)


def triage_request(incident: TriageInput, allowed_actions: Sequence[str] = DEFAULT_ACTIONS, *,
                   prompts_dir=None, version: int | None = None) -> LlmRequest[TriageAnswer]:
    """The typed LLM request for an incident (raises PromptError if the template is broken)."""
    template = load_template(TASK, version, prompts_dir)
    schema = triage_schema(allowed_actions)
    actions = schema["properties"]["suggested_action"]["enum"]
    causes = schema["properties"]["cause"]["enum"]
    prompt = render(template, data=incident.prompt_data(),
                    params={"causes": causes, "actions": actions, "summary_max": SUMMARY_MAX_CHARS})
    return LlmRequest(task=TASK, prompt=prompt, schema=schema, output=TriageAnswer, max_tokens=TRIAGE_MAX_TOKENS)


def warm_prompt(engine: LlmEngine) -> RenderedPrompt | None:
    """The triage prompt of an empty incident: warming with it caches the system text."""
    try:
        return triage_request(TriageInput(incident_id="warm"), prompts_dir=engine.config.prompts_dir).prompt
    except PromptError:
        return None


def triage(incident: TriageInput, engine: LlmEngine | None, *,
           allowed_actions: Sequence[str] = DEFAULT_ACTIONS, version: int | None = None) -> TriageResult:
    """Triage one incident. Never raises; without an engine the rules answer."""
    allowed = list(dict.fromkeys(allowed_actions))
    if engine is None:
        return _fallback(incident, allowed, None, "no llm engine")
    try:
        request = triage_request(incident, allowed, prompts_dir=engine.config.prompts_dir, version=version)
        reply = engine.complete(request)
        if not reply.ok or reply.value is None:
            return _fallback(incident, allowed, reply.outcome, reply.record.error, reply.record)
        answer = reply.value
        dropped: list[str] = []
        action: str | None = answer.suggested_action
        if action == NO_ACTION:
            action = None
        elif action not in allowed:  # the grammar forbids it; if it ever gets through, refuse and record it
            dropped.append(f"suggested_action={action}")
            log.warning("triage %s: dropped action %r outside the allowed set %s", incident.incident_id, action, allowed)
            action = None
        record = reply.record.model_copy(update={"dropped": dropped}) if dropped else reply.record
        rc = rule_cause(incident)
        return TriageResult(
            incident_id=incident.incident_id, cause=answer.cause, confidence=CONFIDENCE_LEVELS[answer.confidence],
            summary=_clean_summary(answer.summary) or f"Probable cause {answer.cause.value}.",
            suggested_action=action, allowed_actions=allowed, source="llm", rule_cause=rc.cause, rule=rc.rule,
            llm_outcome="ok", dropped=dropped, record=record)
    except PromptError as e:
        return _fallback(incident, allowed, "error", str(e))
    except Exception as e:  # triage is advisory: any bug degrades to the rules, never to the caller
        log.exception("triage failed")
        try:
            return _fallback(incident, allowed, "error", f"{type(e).__name__}: {e}")
        except Exception:
            return TriageResult(incident_id=incident.incident_id, cause=ProbableCause.unknown, confidence=0.0,
                                summary="Triage failed; see the log.", allowed_actions=allowed, source="rules",
                                rule_cause=ProbableCause.unknown, rule="error", llm_outcome="error",
                                llm_error=f"{type(e).__name__}: {e}")


async def atriage(incident: TriageInput, engine: LlmEngine | None, *,
                  allowed_actions: Sequence[str] = DEFAULT_ACTIONS) -> TriageResult:
    """`triage` off the event loop (for the steady-state graph's triage node)."""
    return await asyncio.to_thread(triage, incident, engine, allowed_actions=allowed_actions)


class TriageRunner:
    """Runs triage in the background and hands each result to a callback (attach it to the
    incident and the alert). The caller never waits: the fast path has already acted."""

    def __init__(self, engine: LlmEngine | None, on_result: Callable[[TriageResult], None]) -> None:
        self.engine = engine
        self.on_result = on_result
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="triage")

    def submit(self, incident: TriageInput, allowed_actions: Sequence[str] = DEFAULT_ACTIONS) -> Future[TriageResult]:
        def job() -> TriageResult:
            result = triage(incident, self.engine, allowed_actions=allowed_actions)
            try:
                self.on_result(result)
            except Exception:
                log.exception("triage result callback failed")
            return result
        return self._pool.submit(job)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
