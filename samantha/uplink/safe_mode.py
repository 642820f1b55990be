"""Safe mode: the state a Cube falls back to when its policy module has expired, or its supply is held.

Pure transition logic (no I/O, no clock reads); the service persists the state and
applies the effects (docs/safe-mode.md):
- enter when the module in force has expired (or, with `require_policy_module`, when
  the Cube never received one), or the kernel's supply hold is set (frozen or expired TUF
  metadata, samantha/kernel/supply.py), and no operator override is active;
- leave only when a valid module *newer than the one in force at entry* is in force (entered
  for the module), or when fresh TUF metadata has lifted the hold (entered for the supply) and
  the module is fine, or while an override signed by an operator with the `override` role is active.
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
    cause: str = Field("module", description="what entered it: module (policy module) | supply (TUF hold)")
    override_until: float | None = None
    override_by: str | None = None
    left_at: float | None = None
    left_because: str = ""
    used_nonces: list[str] = Field(default_factory=list, description="override nonces already used")


def module_expired(expires_at: float | None, now: float) -> bool:
    return expires_at is not None and now >= expires_at


def next_state(prev: SafeModeState, *, now: float, module_version: int | None, module_expires_at: float | None,
               require_module: bool = False, supply_hold: str | None = None) -> SafeModeState:
    """The state after one evaluation. `module_*` describe the module in force (None: none installed);
    `supply_hold`: the reason of the kernel's supply hold (None: not held)."""
    override = prev.override_until is not None and now < prev.override_until
    expired = module_expired(module_expires_at, now)
    missing = module_version is None and require_module
    if not prev.safe:
        if (expired or missing or supply_hold) and not override:
            reason = (f"policy module v{module_version} expired {now - module_expires_at:.0f}s ago"  # type: ignore[operator]
                      if expired else "no policy module received yet" if missing else f"supply hold: {supply_hold}")
            return prev.model_copy(update={"safe": True, "since": now, "reason": reason,
                                           "cause": "module" if expired or missing else "supply",
                                           "entered_version": module_version, "left_at": None, "left_because": ""})
        return prev
    if prev.cause == "supply":
        if supply_hold is None and not expired and not missing:
            return prev.model_copy(update={"safe": False, "left_at": now,
                                           "left_because": "fresh TUF metadata lifted the supply hold"})
        if supply_hold is None:  # the hold lifted, but the module expired meanwhile: a newer module is needed
            return prev.model_copy(update={"cause": "module", "reason": f"policy module v{module_version} expired"
                                           if expired else "no policy module received yet"})
    newer = (prev.cause == "module" and module_version is not None and not expired
             and (prev.entered_version is None or module_version > prev.entered_version))
    if newer and supply_hold:  # the module is fine again, the supply is still held
        return prev.model_copy(update={"cause": "supply", "reason": f"supply hold: {supply_hold}"})
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
