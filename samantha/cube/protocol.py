"""The CubeRuntime protocol: what Samantha needs from a Cube's model runtime.

The twin implements it over HTTP (samantha/twin/control.py); a real Cube's runtime
implements the same calls. Every mutating call takes a request id, is idempotent
(a repeated id returns the recorded result and is not applied again) and returns
the new state. See docs/cube-runtime.md.

The state records (CubeState, SlotState, Weights, QuarantineEntry) live in samantha/core/cube_state.py, so
the safety kernel can read them; they are re-exported here.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from samantha.core.cube_state import (
    BUNDLE_ID_PATTERN,
    CubeState,
    QuarantineEntry,
    SlotName,
    SlotState,
    Weights,
)

__all__ = ["BUNDLE_ID_PATTERN", "REQUEST_ID_PATTERN", "CubeError", "CubeRuntime", "CubeState", "FlipRequest",
           "LoadRequest", "Model", "Mutation", "MutationResult", "QuarantineEntry", "QuarantineRequest",
           "ReleaseRequest", "SafeModeRequest", "ShadowRequest", "SlotName", "SlotState", "Weights",
           "WeightsRequest"]

REQUEST_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Mutation(Model):
    request_id: str = Field(pattern=REQUEST_ID_PATTERN)


class LoadRequest(Mutation):
    bundle: str = Field(min_length=1, max_length=4096, description="bundle directory on the Cube")


class WeightsRequest(Mutation):
    standby: float = Field(ge=0, le=100, description="percent of traffic to the standby slot")


class FlipRequest(Mutation):
    pass


class ShadowRequest(Mutation):
    enabled: bool


class QuarantineRequest(Mutation):
    bundle_id: str = Field(pattern=BUNDLE_ID_PATTERN)
    reason: str = Field("", max_length=1000)


class ReleaseRequest(Mutation):
    bundle_id: str = Field(pattern=BUNDLE_ID_PATTERN)


class SafeModeRequest(Mutation):
    enabled: bool


class MutationResult(Model):
    request_id: str
    applied: bool = Field(description="false when the request id was seen before (the recorded result is returned)")
    state: CubeState


class CubeError(Exception):
    """The Cube refused a call. `status` is the HTTP status, `code` machine-readable, `reason` for humans."""

    def __init__(self, status: int, code: str, reason: str, field: str | None = None):
        self.status, self.code, self.reason, self.field = status, code, reason, field
        super().__init__(f"{status} {code}: {reason}" + (f" (field {field})" if field else ""))


@runtime_checkable
class CubeRuntime(Protocol):
    def state(self) -> CubeState: ...

    def load(self, bundle: str, *, request_id: str) -> MutationResult: ...

    def set_weights(self, standby: float, *, request_id: str) -> MutationResult: ...

    def flip(self, *, request_id: str) -> MutationResult: ...

    def set_shadow(self, enabled: bool, *, request_id: str) -> MutationResult: ...

    def quarantine(self, bundle_id: str, *, reason: str, request_id: str) -> MutationResult: ...

    def release(self, bundle_id: str, *, request_id: str) -> MutationResult: ...

    def safe_mode(self, enabled: bool, *, request_id: str) -> MutationResult: ...
