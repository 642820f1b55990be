"""The closed set of actions a playbook or a rollout policy may ask for (the policy kernel disposes)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from samantha.core.domain import Severity


class _Action(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    reason: str = ""


class AbortRollout(_Action):
    """Send all traffic back to the active slot."""

    action: Literal["abort_rollout"] = "abort_rollout"


class HoldRollout(_Action):
    """Stay at the current step until the gates say more."""

    action: Literal["hold_rollout"] = "hold_rollout"
    max_hold_s: float = Field(600, gt=0)


class Flip(_Action):
    """Swap active and standby atomically."""

    action: Literal["flip"] = "flip"


class Quarantine(_Action):
    """Mark a bundle bad so it is never promoted again."""

    action: Literal["quarantine"] = "quarantine"
    target: Literal["standby", "active"] = "standby"


class Alert(_Action):
    action: Literal["alert"] = "alert"
    severity: Severity = "warning"


class SafeMode(_Action):
    """Serve from the last known-good configuration and stop all changes."""

    action: Literal["safe_mode"] = "safe_mode"


Action = Annotated[AbortRollout | HoldRollout | Flip | Quarantine | Alert | SafeMode, Field(discriminator="action")]
ACTION_KINDS = ("abort_rollout", "hold_rollout", "flip", "quarantine", "alert", "safe_mode")
