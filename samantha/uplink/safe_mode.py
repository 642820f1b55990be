"""Safe mode: the state a Cube falls back to when its policy module has expired.

Pure transition logic (no I/O, no clock reads); the service persists the state and
applies the effects (docs/safe-mode.md):
- enter when the module in force has expired (or, with `require_policy_module`, when
  the Cube never received one) and no operator override is active;
- leave only when a valid module *newer than the one in force at entry* is in force,
  or while an override signed by an operator with the `override` role is active.
A clock that jumps back and makes the old module look valid again does not leave safe
mode: only a newer version or a signed override does.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SafeModeState(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    safe: bool = False
    since: float | None = Field(None, description="wall time safe mode was entered")
    reason: str = ""
    entered_version: int | None = Field(None, description="module version in force at entry (None: none)")
    override_until: float | None = None
    override_by: str | None = None
    left_at: float | None = None
    left_because: str = ""
    used_nonces: list[str] = Field(default_factory=list, description="override nonces already used")


def module_expired(expires_at: float | None, now: float) -> bool:
    return expires_at is not None and now >= expires_at


def next_state(prev: SafeModeState, *, now: float, module_version: int | None, module_expires_at: float | None,
               require_module: bool = False) -> SafeModeState:
    """The state after one evaluation. `module_*` describe the module in force (None: none installed)."""
    override = prev.override_until is not None and now < prev.override_until
    expired = module_expired(module_expires_at, now)
    missing = module_version is None and require_module
    if not prev.safe:
        if (expired or missing) and not override:
            reason = (f"policy module v{module_version} expired {now - module_expires_at:.0f}s ago"  # type: ignore[operator]
                      if expired else "no policy module received yet")
            return prev.model_copy(update={"safe": True, "since": now, "reason": reason,
                                           "entered_version": module_version, "left_at": None, "left_because": ""})
        return prev
    newer = (module_version is not None and not expired
             and (prev.entered_version is None or module_version > prev.entered_version))
    if newer:
        return prev.model_copy(update={"safe": False, "left_at": now,
                                       "left_because": f"valid newer policy module v{module_version}"})
    if override:
        return prev.model_copy(update={"safe": False, "left_at": now,
                                       "left_because": f"operator override by {prev.override_by} "
                                                       f"until {prev.override_until:.0f}"})
    return prev


def with_override(prev: SafeModeState, *, until: float, by: str, nonce: str) -> SafeModeState:
    """Record a verified override; the next evaluation leaves safe mode while it lasts."""
    return prev.model_copy(update={"override_until": until, "override_by": by,
                                   "used_nonces": [*prev.used_nonces[-99:], nonce]})
