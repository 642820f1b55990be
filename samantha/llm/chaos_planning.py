"""Chaos proposals and ranking from the LLM, constrained to the fault catalog.

The chaos planner owns the catalog and the pre-flight check; these functions
only ask the model to pick from what the caller passes in. Both never raise:
without a valid answer they return an empty list (the planner's own ordering
then stands). Every proposal is re-checked against the given sets after decoding.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from samantha.llm.engine import LlmEngine, LlmRequest
from samantha.llm.prompts import load_template, render
from samantha.llm.records import LlmCallRecord, Outcome
from samantha.llm.schemas import (
    HYPOTHESIS_MAX_CHARS,
    RANKING_REASON_MAX_CHARS,
    chaos_proposal_schema,
    chaos_ranking_schema,
    plain_pattern,
)

log = logging.getLogger(__name__)


class Proposal(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    fault: str
    target: str
    intensity: Literal["low", "medium", "high"]
    hypothesis: str = Field(pattern=plain_pattern(8, HYPOTHESIS_MAX_CHARS))


class _ProposalAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    proposals: list[Proposal] = Field(min_length=1)


class _RankingAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ranking: list[str] = Field(min_length=1)
    reason: str = Field(pattern=plain_pattern(8, RANKING_REASON_MAX_CHARS))


class ChaosAdvice(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    proposals: list[Proposal] = Field(default_factory=list)
    ranking: list[str] = Field(default_factory=list)
    reason: str | None = None
    dropped: list[str] = Field(default_factory=list)
    llm_outcome: Outcome | None = None
    llm_error: str | None = None
    record: LlmCallRecord | None = None


def propose_experiments(state: dict[str, Any], faults: Sequence[str], targets: Sequence[str],
                        engine: LlmEngine | None, *, max_proposals: int = 3) -> ChaosAdvice:
    """Up to max_proposals (fault, target, intensity, hypothesis) from the given sets. Never raises."""
    if engine is None:
        return ChaosAdvice(llm_error="no llm engine")
    try:
        schema = chaos_proposal_schema(faults, targets, max_proposals)
        prompt = render(load_template("chaos_proposal", directory=engine.config.prompts_dir), data=state,
                        params={"faults": list(faults), "targets": list(targets), "max_proposals": max_proposals})
        reply = engine.complete(LlmRequest(task="chaos_proposal", prompt=prompt, schema=schema,
                                           output=_ProposalAnswer, max_tokens=max_proposals * (HYPOTHESIS_MAX_CHARS + 48) + 16))
        if not reply.ok or reply.value is None:
            return ChaosAdvice(llm_outcome=reply.outcome, llm_error=reply.record.error, record=reply.record)
        kept, dropped = [], []
        for p in reply.value.proposals[:max_proposals]:
            if p.fault in faults and p.target in targets:
                kept.append(p)
            else:
                dropped.append(f"{p.fault}@{p.target}")
        if dropped:
            log.warning("chaos proposal: dropped %s outside the catalog", dropped)
        return ChaosAdvice(proposals=kept, dropped=dropped, llm_outcome="ok", record=reply.record)
    except Exception as e:
        log.exception("chaos proposal failed")
        return ChaosAdvice(llm_outcome="error", llm_error=f"{type(e).__name__}: {e}")


def rank_experiments(candidates: dict[str, Any], engine: LlmEngine | None) -> ChaosAdvice:
    """An ordering of the candidate ids (keys of `candidates`), each at most once. Never raises."""
    if engine is None:
        return ChaosAdvice(llm_error="no llm engine")
    ids = list(candidates)
    try:
        prompt = render(load_template("chaos_ranking", directory=engine.config.prompts_dir), data=candidates,
                        params={"candidates": ids})
        reply = engine.complete(LlmRequest(task="chaos_ranking", prompt=prompt, schema=chaos_ranking_schema(ids),
                                           output=_RankingAnswer,
                                           max_tokens=len(ids) * 12 + RANKING_REASON_MAX_CHARS + 32))
        if not reply.ok or reply.value is None:
            return ChaosAdvice(llm_outcome=reply.outcome, llm_error=reply.record.error, record=reply.record)
        ranking, dropped = [], []
        for cid in reply.value.ranking:
            if cid in ids and cid not in ranking:
                ranking.append(cid)
            else:
                dropped.append(cid)
        return ChaosAdvice(ranking=ranking, reason=reply.value.reason, dropped=dropped, llm_outcome="ok",
                           record=reply.record)
    except Exception as e:
        log.exception("chaos ranking failed")
        return ChaosAdvice(llm_outcome="error", llm_error=f"{type(e).__name__}: {e}")
