"""A bundle's fault profile: the knobs that make a defective bundle for tests and demos."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class FaultProfile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    latency_ms: float = Field(0.0, ge=0, le=60_000, description="added to every inference")
    jitter_ms: float = Field(0.0, ge=0, le=60_000, description="uniform extra latency in [0, jitter_ms]")
    error_rate: float = Field(0.0, ge=0, le=1, description="fraction of inferences answered with HTTP 500")
    output_bias: float = Field(0.0, ge=-10, le=10, description="added to the logits of class 0 (a wrong model)")
    nan_rate: float = Field(0.0, ge=0, le=1, description="fraction of inferences whose output is NaN")
    crash_after_s: float | None = Field(None, gt=0, description="the slot process exits this long after loading")
    leak_mb_per_s: float = Field(0.0, ge=0, le=100, description="resident memory grows this fast (capped)")
    cpu_burn: float = Field(0.0, ge=0, le=1000, description="busy-loop milliseconds of CPU per inference")

    def is_clean(self) -> bool:
        return self == FaultProfile()

    def active_knobs(self) -> list[str]:
        """Names of the knobs that differ from a clean bundle, for reports."""
        clean = FaultProfile()
        return [k for k in type(self).model_fields if getattr(self, k) != getattr(clean, k)]

    def overlay(self, other: FaultProfile) -> FaultProfile:
        """`other`'s non-default knobs on top of this profile (runtime degradation over a bundle)."""
        return self.model_copy(update={k: getattr(other, k) for k in other.active_knobs()})
