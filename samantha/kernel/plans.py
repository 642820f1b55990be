"""Plans with Constraints: "roll out bundle X when ...", carried by the policy module. Pure.

A Plan names a bundle and the Constraints under which a Cube may start rolling it out:

- `window`: a maintenance window, recurring: the weekdays it opens on and `start`-`end` in UTC
  (`HH:MM` or `HH:MM:SS`; an end before the start runs past midnight into the next day, an end equal to
  the start lasts 24 hours);
- `min_samantha_version`: this Cube's Samantha is at least this version (PEP 440, `packaging`);
- `requires_active`: this bundle (an id, or at least 8 hex digits of one) is the active bundle now.

`evaluate(plan, now, version, active)` says whether every constraint holds at `now` and, when one does not,
each reason (all of them, so a Cube that waits says everything it waits for) and, for the window, when it
opens next. The rollout itself (gates at every step) is the rollout controller's, once the Plan starts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from packaging.version import InvalidVersion, Version
from pydantic import BaseModel, ConfigDict, Field, field_validator

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?$")
DAY_S = 86400


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def seconds_of_day(text: str) -> int:
    m = _TIME.match(text)
    if not m:
        raise ValueError(f"{text!r} is not a time of day (HH:MM or HH:MM:SS, UTC)")
    return int(m[1]) * 3600 + int(m[2]) * 60 + int(m[3] or 0)


class MaintenanceWindow(_M):
    days: list[Weekday] = Field(default_factory=lambda: list(WEEKDAYS), min_length=1,
                                description="weekdays (UTC) the window opens on")
    start: str = Field(description="opens at, UTC, HH:MM[:SS]")
    end: str = Field(description="closes at, UTC, HH:MM[:SS]; before start: the next day")

    @field_validator("start", "end")
    @classmethod
    def _time(cls, v: str) -> str:
        seconds_of_day(v)
        return v

    def contains(self, now: float) -> bool:
        """Open at `now`: within [start, end) of a day it opens on (a window past midnight belongs to the day
        it opened; start == end is 24 hours)."""
        t = datetime.fromtimestamp(now, UTC)
        s, e, sec = seconds_of_day(self.start), seconds_of_day(self.end), t.hour * 3600 + t.minute * 60 + t.second
        today, yesterday = WEEKDAYS[t.weekday()], WEEKDAYS[(t.weekday() - 1) % 7]
        if s < e:
            return today in self.days and s <= sec < e
        return (today in self.days and sec >= s) or (yesterday in self.days and sec < e)

    def next_open(self, now: float) -> float:
        """The next time at or after `now` the window opens (now itself when it is open)."""
        if self.contains(now):
            return now
        t = datetime.fromtimestamp(now, UTC)
        midnight = datetime(t.year, t.month, t.day, tzinfo=UTC)
        s = seconds_of_day(self.start)
        for d in range(8):
            day = midnight + timedelta(days=d)
            at = (day + timedelta(seconds=s)).timestamp()
            if WEEKDAYS[day.weekday()] in self.days and at >= now:
                return at
        raise AssertionError("a window with at least one day opens within 8 days")


class Constraints(_M):
    window: MaintenanceWindow | None = None
    min_samantha_version: str | None = Field(None, description="PEP 440 version this Cube must run at least")
    requires_active: str | None = Field(None, pattern=r"^[0-9a-f]{8,64}$",
                                        description="bundle id (or >= 8 hex digits of it) that must be active")

    @field_validator("min_samantha_version")
    @classmethod
    def _version(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                Version(v)
            except InvalidVersion:
                raise ValueError(f"{v!r} is not a PEP 440 version") from None
        return v


class Plan(_M):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$", description="unique in the module; the rollout's "
                    "request id derives from it, so a Plan starts at most once per Cube")
    bundle: str = Field(min_length=1, max_length=500, description="the bundle to roll out: its id (>= 8 hex) or "
                        "its directory name under the Cube's bundles dir")
    description: str = ""
    constraints: Constraints = Constraints()


@dataclass(frozen=True)
class PlanVerdict:
    ready: bool
    waiting: list[str] = field(default_factory=list)  # every constraint that does not hold, with why
    next_window_at: float | None = None  # when the window opens next (set while waiting for it)


def evaluate(plan: Plan, now: float, samantha_version: str, active_bundle: str | None) -> PlanVerdict:
    """Whether `plan` may start at `now` on a Cube running `samantha_version` with `active_bundle` active."""
    c, waiting, next_at = plan.constraints, [], None
    if c.window is not None and not c.window.contains(now):
        next_at = c.window.next_open(now)
        waiting.append(f"window: outside the maintenance window ({','.join(c.window.days)} {c.window.start}-"
                       f"{c.window.end} UTC); opens in {next_at - now:.0f} s")
    if c.min_samantha_version is not None:
        try:
            ok = Version(samantha_version) >= Version(c.min_samantha_version)
        except InvalidVersion:
            ok = False
        if not ok:
            waiting.append(f"min_samantha_version: this Cube runs {samantha_version}, the plan needs "
                           f">= {c.min_samantha_version}")
    if c.requires_active is not None and not (active_bundle or "").startswith(c.requires_active):
        waiting.append(f"requires_active: the active bundle is {(active_bundle or 'none')[:16]}, not "
                       f"{c.requires_active[:16]}")
    return PlanVerdict(ready=not waiting, waiting=waiting, next_window_at=next_at)
