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

from samantha.domain import ProbableCause

DEFAULT_ACTIONS: tuple[str, ...] = ("abort_rollout", "flip", "quarantine", "alert", "safe_mode",
                                    "hold_rollout", "none")
NO_ACTION = "none"
CONFIDENCE_LEVELS: dict[str, float] = {"low": 0.3, "medium": 0.6, "high": 0.9}
SUMMARY_MAX_CHARS = 160


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
        "summary": {"type": "string", "minLength": 8, "maxLength": SUMMARY_MAX_CHARS},
    })


def summary_schema(max_chars: int = 400) -> dict[str, Any]:
    """An incident summary for the operator: headline, what happened, what was done."""
    return _obj({
        "headline": {"type": "string", "minLength": 8, "maxLength": 100},
        "what_happened": {"type": "string", "minLength": 8, "maxLength": max_chars},
        "what_was_done": {"type": "string", "minLength": 4, "maxLength": max_chars // 2},
    })


def chaos_proposal_schema(faults: Sequence[str], targets: Sequence[str], max_proposals: int = 3) -> dict[str, Any]:
    """Fault experiments to try: the fault kind and target come from the fault catalog and the Cube's slots."""
    if max_proposals < 1:
        raise ValueError("max_proposals must be >= 1")
    item = _obj({
        "fault": {"enum": _enum(faults, "faults")},
        "target": {"enum": _enum(targets, "targets")},
        "intensity": {"enum": ["low", "medium", "high"]},
        "hypothesis": {"type": "string", "minLength": 8, "maxLength": 140},
    })
    return _obj({"proposals": {"type": "array", "items": item, "minItems": 1, "maxItems": max_proposals}})


def chaos_ranking_schema(candidate_ids: Sequence[str]) -> dict[str, Any]:
    """An ordering of the given candidates, most informative first, with a one-line reason."""
    ids = _enum(candidate_ids, "candidate_ids")
    return _obj({
        "ranking": {"type": "array", "items": {"enum": ids}, "minItems": 1, "maxItems": len(ids)},
        "reason": {"type": "string", "minLength": 8, "maxLength": 160},
    })
