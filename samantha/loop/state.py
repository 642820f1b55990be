"""The steady-state graph's cycle state: plain JSON-able data, checkpointed after every node."""

from __future__ import annotations

from typing import Any, TypedDict


class CycleState(TypedDict, total=False):
    cycle: int
    now: float  # wall time the cycle observed
    cube: dict[str, Any] | None  # CubeState as JSON; None when the Cube did not answer
    cube_error: str | None
    canary: dict[str, Any] | None  # {bundle_id, name, start} while the standby takes traffic
    verdicts: list[dict[str, Any]]
    failing: list[dict[str, Any]]
    triage_queued: int
    firings: list[dict[str, Any]]
    decisions: list[dict[str, Any]]  # allowed by the policy, each with its action id (= Cube request id)
    refusals: list[dict[str, Any]]
    pending: dict[str, int]  # ledger rows still in intent / awaiting verification
    acted: list[dict[str, Any]]
    verified: list[dict[str, Any]]
    closed: list[str]
    timings: dict[str, float]  # node -> ms


def fresh(cycle: int) -> CycleState:
    """Input of a new cycle: every key reset, so nothing leaks from the previous one."""
    return CycleState(cycle=cycle, now=0.0, cube=None, cube_error=None, canary=None, verdicts=[], failing=[],
                      triage_queued=0, firings=[], decisions=[], refusals=[], pending={}, acted=[], verified=[],
                      closed=[], timings={})
