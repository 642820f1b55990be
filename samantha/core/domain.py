"""Typed domain records shared across subsystems. Declare them here once; import, don't re-declare."""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

SlotRole = Literal["active", "standby"]
Severity = Literal["info", "warning", "critical"]
# The closed set of actions a playbook may name (issue 4), and every action the safety kernel judges.
PlaybookActionKind = Literal["abort_rollout", "flip", "quarantine", "alert", "safe_mode", "hold_rollout"]
ActionKind = Literal[PlaybookActionKind, "advance_rollout", "chaos"]


class ProbableCause(StrEnum):
    """What triage may name as an incident's cause (LLM output is constrained to these)."""

    bad_bundle = "bad_bundle"                    # the newly deployed bundle is defective
    input_drift = "input_drift"                  # the input distribution moved
    resource_exhaustion = "resource_exhaustion"  # memory, CPU or disk pressure on the Cube
    network_fault = "network_fault"              # latency/resets between router and slots
    slot_down = "slot_down"                      # a slot process is not serving
    policy_expired = "policy_expired"            # the signed policy module expired
    unknown = "unknown"


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _finite(v: float) -> float:
    if not math.isfinite(v):
        raise ValueError("must be a finite number (NaN and inf are rejected)")
    return v


class Sample(Record):
    """One point of a generic metric, Prometheus-like."""

    metric: str = Field(min_length=1, max_length=200, pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
    labels: dict[str, str] = Field(default_factory=dict)
    ts: float = Field(description="wall time, epoch seconds")
    value: float

    _v = field_validator("value", "ts")(_finite)


class RequestEvent(Record):
    """One inference as seen by the router: the canary judge works on these."""

    ts: float
    slot: SlotRole
    bundle: str = Field(min_length=1, max_length=200)
    latency_ms: float = Field(ge=0)
    ok: bool
    divergence: float | None = Field(None, ge=0, description="|output - incumbent output| when compared")
    shadow: bool = False

    _v = field_validator("ts", "latency_ms")(_finite)

    @field_validator("divergence")
    @classmethod
    def _div(cls, v: float | None) -> float | None:
        return None if v is None else _finite(v)


class Event(Record):
    """A discrete happening: a deploy, a fold, a flip, a fault onset."""

    ts: float
    kind: str = Field(min_length=1, max_length=100)
    source: str = Field("samantha", max_length=100)
    severity: Severity = "info"
    attrs: dict[str, Any] = Field(default_factory=dict)

    _v = field_validator("ts")(_finite)


class RolloutMark(BaseModel):
    """What the safety kernel needs of the rollout controller's record: is a rollout under way, of which
    bundle, in which phase. The controller's record projects onto it (`RolloutRecord.mark()`); the kernel's
    view (samantha/kernel/view.py) reads it without importing the rollout package."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rollout_id: str
    bundle_id: str
    phase: str = Field(description="the controller's phase (idle, loading, shadow, step, soak, flipping, ...)")
    active: bool = Field(description="the rollout is not in a terminal phase: the controller is driving it")
