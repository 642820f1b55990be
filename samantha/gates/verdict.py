"""What a gate says: pass, fail or inconclusive, always with the numbers behind it."""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Status = Literal["pass", "fail", "inconclusive"]


def _clean(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if hasattr(v, "item"):  # numpy scalars
        return _clean(v.item())
    return v


class Verdict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    gate: str
    kind: str
    status: Status
    reason: str
    ts: float = Field(description="evaluation time (epoch s)")
    window: tuple[float, float] = Field(description="data window [start, end] in epoch s")
    samples: dict[str, int] = Field(default_factory=dict, description="sample sizes per group")
    values: dict[str, Any] = Field(default_factory=dict, description="the numbers the verdict rests on")

    @classmethod
    def make(cls, gate: Any, status: Status, reason: str, now: float, window: tuple[float, float],
             samples: dict[str, int] | None = None, **values: Any) -> Verdict:
        # built from trusted values by the engine on the hot path: skip re-validation
        return cls.model_construct(gate=gate.name, kind=gate.kind, status=status, reason=reason, ts=float(now),
                                   window=(float(window[0]), float(window[1])),
                                   samples={k: int(v) for k, v in (samples or {}).items()},
                                   values={k: _clean(v) for k, v in values.items()})
