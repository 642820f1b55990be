"""The Cube's state as its runtime reports it (`GET /v1/state`): slots, weights, shadow, quarantine, safe mode.

Plain records, declared in the core so that the safety kernel's view (samantha/kernel/view.py) reads them
without importing the cube package. `samantha.cube.protocol` re-exports every name here: the CubeRuntime
protocol, its client and the twin keep importing them from there.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from samantha.core.domain import SlotRole

SlotName = Literal["A", "B"]
BUNDLE_ID_PATTERN = r"^[0-9a-f]{64}$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SlotState(_Model):
    name: SlotName
    role: SlotRole
    bundle_id: str | None = None
    bundle_name: str | None = None
    bundle_version: str | None = None
    bundle_expires_at: float | None = Field(None, description="the loaded bundle's signed expiry, epoch seconds")
    loaded: bool = False
    verified: bool = False
    healthy: bool = False
    health_detail: str | None = None
    fault_knobs: list[str] = Field(default_factory=list, description="non-clean fault-profile knobs (twin only)")


class QuarantineEntry(_Model):
    bundle_id: str = Field(pattern=BUNDLE_ID_PATTERN)
    reason: str = ""
    at: float = Field(description="wall time, epoch seconds")


class Weights(_Model):
    active: float = Field(ge=0, le=100)
    standby: float = Field(ge=0, le=100)


class CubeState(_Model):
    slots: list[SlotState]
    active: SlotName
    weights: Weights
    shadow: bool
    quarantine: list[QuarantineEntry]
    safe_mode: bool
    generation: int = Field(description="increments on every applied mutation")
    ts: float

    def slot(self, role: SlotRole) -> SlotState:
        return next(s for s in self.slots if s.role == role)

    def is_quarantined(self, bundle_id: str | None) -> bool:
        return bundle_id is not None and any(q.bundle_id == bundle_id for q in self.quarantine)

    @property
    def standby_takes_traffic(self) -> bool:
        """The standby slot sees requests now: live (weight > 0) or mirrored (shadow on). A canary to judge."""
        return self.weights.standby > 0 or self.shadow
