"""Playbooks as documents: the pydantic model (scope, when, limits, actions), its JSON Schema, and loading
with errors that name file, line, column and field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from samantha.core.domain import SlotRole
from samantha.core.validated_yaml import (
    DocumentError,
    Loc,
    Problem,
    parse_yaml,
    problems_from_validation,
)
from samantha.gates.actions import Action
from samantha.gates.spec import (
    NAME_PATTERN,
    Duration,
    Gate,
    parse_duration,
)

StepRef = int | Literal["shadow"]


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Scope(_M):
    slot: SlotRole | None = Field(None, description="the slot the playbook is about")
    bundle: str | None = Field(None, description="glob on the bundle name (standby's during a rollout)")
    rollout_step: list[StepRef] | None = Field(None, description="active only at these rollout steps (percent)")


class When(_M):
    any: list[str | Gate] | None = Field(None, description="fires when any gate fails")
    all: list[str | Gate] | None = Field(None, description="fires when every gate fails")
    for_: int | str = Field(1, alias="for", description="N consecutive failing evaluations, or a duration (30s)")
    scope: Scope = Scope()

    @field_validator("for_")
    @classmethod
    def _for(cls, v: int | str) -> int | str:
        if isinstance(v, bool):
            raise ValueError("for: a count of evaluations (3) or a duration (30s)")
        if isinstance(v, int):
            if v < 1:
                raise ValueError("for: at least 1 evaluation")
            return v
        if parse_duration(v) <= 0:
            raise ValueError("for: duration must be > 0")
        return v

    @property
    def refs(self) -> list[str | Gate]:
        return list(self.any or self.all or [])

    @property
    def mode(self) -> Literal["any", "all"]:
        return "all" if self.all else "any"

    @property
    def for_count(self) -> int | None:
        return self.for_ if isinstance(self.for_, int) else None

    @property
    def for_seconds(self) -> float | None:
        return None if isinstance(self.for_, int) else parse_duration(self.for_)


class OnInconclusive(_M):
    after: Duration = Field(gt=0, description="how long the gates may stay inconclusive")
    then: list[Action] = Field(min_length=1)


class Limits(_M):
    cooldown: Duration = Field(300.0, ge=0, description="no new firing this soon after the last")
    max_actions_per_hour: int = Field(4, ge=1, description="anti-flap: firings beyond this are suppressed")
    on_inconclusive_for: OnInconclusive | None = None


class Playbook(_M):
    name: str = Field(pattern=NAME_PATTERN)
    version: int = Field(ge=1)
    owner: str = Field(min_length=1)
    description: str = ""
    priority: int = Field(50, ge=0, le=1000, description="higher runs first when several fire together")
    metrics: list[str] = Field(default_factory=list, description="custom metric names this playbook may read")
    gates: list[Gate] = Field(default_factory=list, description="named gates declared here")
    when: When
    then: list[Action] = Field(min_length=1)
    limits: Limits = Limits()


def playbook_schema() -> dict[str, Any]:
    return Playbook.model_json_schema(by_alias=True)


# ---------------- loading ----------------

@dataclass
class Loaded:
    source: str
    playbook: Playbook | None
    marks: dict[Loc, tuple[int, int]]
    problems: list[Problem] = field(default_factory=list)


def load_text(text: str, source: str) -> Loaded:
    try:
        data, marks = parse_yaml(text, source)
    except DocumentError as e:
        return Loaded(source, None, {}, e.problems)
    if not isinstance(data, dict):
        return Loaded(source, None, marks, [Problem(source, 1, 1, "", "a playbook is a YAML mapping")])
    try:
        return Loaded(source, Playbook.model_validate(data), marks)
    except ValidationError as e:
        return Loaded(source, None, marks, problems_from_validation(e, source, marks))


def load_file(path: str | Path) -> Loaded:
    p = Path(path)
    try:
        return load_text(p.read_text(encoding="utf-8"), str(p))
    except (OSError, UnicodeDecodeError) as e:
        return Loaded(str(p), None, {}, [Problem(str(p), 0, 0, "", f"cannot read: {e}")])


def load_playbook(path: str | Path) -> Playbook:
    """One valid playbook or DocumentError with every problem (schema only; use lint for the rest)."""
    ld = load_file(path)
    if ld.problems or ld.playbook is None:
        raise DocumentError(ld.problems)
    return ld.playbook


