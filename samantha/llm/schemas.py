"""JSON schemas that constrain decoding, built from code-level enumerations.

The model can only emit values that policy already allows: the action set comes
from the playbook module, the fault kinds from the chaos fault catalog. Those
modules land separately, so the sets are parameters here, with the currently
known action set as the default. The output is validated again by pydantic and
against the same sets after decoding (see the task modules).

Strings carry maxLength so a completion always closes within its token budget,
and property order puts the short, decisive fields first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from samantha.core.domain import ProbableCause

DEFAULT_ACTIONS: tuple[str, ...] = ("abort_rollout", "flip", "quarantine", "alert", "safe_mode",
                                    "hold_rollout", "none")
NO_ACTION = "none"
CONFIDENCE_LEVELS: dict[str, float] = {"low": 0.3, "medium": 0.6, "high": 0.9}
SUMMARY_MAX_CHARS = 120
# Plain text only: every character is at least one token, so a bounded length bounds the
# completion (a free JSON string could spend the budget on \u escapes and be cut mid-way),
# and the summary can go on a console or a web page without escaping surprises.
PLAIN_CHARS = "A-Za-z0-9 ,.;:%()/+'-"  # no underscore: tiny models loop on snake_case runs


def plain_pattern(lo: int, hi: int) -> str:
    return rf"^[{PLAIN_CHARS}]{{{lo},{hi}}}$"


def plain_text(lo: int, hi: int) -> dict[str, Any]:
    return {"type": "string", "pattern": plain_pattern(lo, hi)}


SUMMARY_PATTERN = plain_pattern(8, SUMMARY_MAX_CHARS)
# Worst case of a triage answer: the summary one token per character, plus keys and enums.
TRIAGE_MAX_TOKENS = SUMMARY_MAX_CHARS + 96
# Incident summary field caps and its worst-case token budget.
SUMMARY_FIELDS = {"headline": (8, 80), "what_happened": (8, 240), "what_was_done": (4, 120)}
SUMMARY_MAX_TOKENS = sum(hi for _, hi in SUMMARY_FIELDS.values()) + 64
HYPOTHESIS_MAX_CHARS = 120
RANKING_REASON_MAX_CHARS = 120


def _enum(values: Sequence[str], what: str) -> list[str]:
    out = list(dict.fromkeys(str(v) for v in values))
    if not out:
        raise ValueError(f"{what}: the enumeration must not be empty")
    return out


def _obj(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(properties),
            "additionalProperties": False}


def triage_schema(actions: Sequence[str] = DEFAULT_ACTIONS,
                  causes: Sequence[str] = tuple(c.value for c in ProbableCause)) -> dict[str, Any]:
    """cause, confidence, suggested_action (always including "none"), operator summary."""
    acts = _enum(actions, "actions")
    if NO_ACTION not in acts:
        acts.append(NO_ACTION)
    return _obj({
        "cause": {"enum": _enum(causes, "causes")},
        "confidence": {"enum": list(CONFIDENCE_LEVELS)},
        "suggested_action": {"enum": acts},
        "summary": {"type": "string", "pattern": SUMMARY_PATTERN},
    })


def summary_schema() -> dict[str, Any]:
    """An incident summary for the operator: headline, what happened, what was done."""
    return _obj({name: plain_text(lo, hi) for name, (lo, hi) in SUMMARY_FIELDS.items()})


def chaos_proposal_schema(faults: Sequence[str], targets: Sequence[str], max_proposals: int = 3) -> dict[str, Any]:
    """Fault experiments to try: the fault kind and target come from the fault catalog and the Cube's slots."""
    if max_proposals < 1:
        raise ValueError("max_proposals must be >= 1")
    item = _obj({
        "fault": {"enum": _enum(faults, "faults")},
        "target": {"enum": _enum(targets, "targets")},
        "intensity": {"enum": ["low", "medium", "high"]},
        "hypothesis": plain_text(8, HYPOTHESIS_MAX_CHARS),
    })
    return _obj({"proposals": {"type": "array", "items": item, "minItems": 1, "maxItems": max_proposals}})


def chaos_ranking_schema(candidate_ids: Sequence[str]) -> dict[str, Any]:
    """An ordering of the given candidates, most informative first, with a one-line reason."""
    ids = _enum(candidate_ids, "candidate_ids")
    return _obj({
        "ranking": {"type": "array", "items": {"enum": ids}, "minItems": 1, "maxItems": len(ids)},
        "reason": plain_text(8, RANKING_REASON_MAX_CHARS),
    })
