"""The grey zone's way to a human: a rollout that stays inconclusive asks an operator through the approval queue.

The rollout layer does not import chaos (they are independent parts); the daemon hands the controller a
provider of something with this shape, the chaos approval queue (`samantha/chaos/approvals.py`, `ask`).
The request is a plain record; the queue signs nothing and decides nothing: an operator's signed decision
does, checked as for any escalated experiment.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, Protocol

ROLLOUT_HOLD_KIND = "rollout_grey_zone"  # the approval item's proposal kind
Decided = Literal["pending", "approved", "denied", "expired"]


class HumanAsk(Protocol):
    def ask(self, request: dict[str, Any]) -> str:
        """Queue the request (idempotent by its `id`); returns the approval id."""
        ...

    def decision(self, approval_id: str) -> str | None:
        """pending | approved | denied | expired (anything else, or None: gone)."""
        ...

    def withdraw(self, approval_id: str, why: str) -> None:
        """The rollout no longer waits for it (the evidence decided, or the rollout ended)."""
        ...


AskProvider = Callable[[], HumanAsk | None]  # None: no queue on this host (chaos mode off)


def hold_request(*, rollout_id: str, phase: str, step: int | None, weight: float, bundle_id: str,
                 bundle_label: str, reason: str, inconclusive_s: float, verdicts: list[dict[str, Any]]) -> dict[str, Any]:
    """What an operator sees: which rollout, where it stands, why the evidence is inconclusive, what each
    decision does. `id` is derived from the rollout and phase, so asking again after a restart is a no-op."""
    where = phase if step is None else f"{phase}{step}"
    return {
        "id": f"apr-{rollout_id}-{where}",
        "kind": ROLLOUT_HOLD_KIND,
        "target": bundle_label,
        "params": {"rollout_id": rollout_id, "phase": phase, "step": step, "weight": weight, "bundle_id": bundle_id},
        "title": f"rollout of {bundle_label} inconclusive at {phase} ({weight:g}%) for {inconclusive_s:.0f} s",
        "reason": reason,
        "verdicts": verdicts,
        "on_approve": "the phase passes and the rollout advances",
        "on_deny": "abort: traffic back to the active slot; the bundle is not quarantined",
    }
