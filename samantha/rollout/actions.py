"""How the rollout controller records its Cube calls write-ahead: the `ActionRecorder` seam and its
production implementation over the loop's shared action ledger (`actions` table).

The intent is stored before the Cube is called and the outcome after; the request id is the row id,
so a call resumed after a crash finishes the same row.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, Protocol

from samantha.kernel.policy import ActionRecord
from samantha.loop.ledger import ActionLedger

ActionStatus = Literal["done", "failed", "refused"]


class ActionRecorder(Protocol):
    def intent(self, *, kind: str, target: str, reason: str, request_id: str, evidence: dict[str, Any]) -> str: ...

    def finish(self, action_id: str, status: ActionStatus, detail: str = "") -> None: ...

    def history(self) -> list[ActionRecord]:
        """Applied actions (done) the safety kernel's limits count."""
        ...


class RolloutActions:
    """The rollout controller's action recorder over the shared ledger.

    Its rows carry requested_by=rollout: the daemon's verify node confirms their effect from
    telemetry like any other, but never re-drives them (the controller owns its retries), and
    the kernel's limits count playbook and rollout actions together.
    """

    def __init__(self, ledger: ActionLedger, snapshot: Callable[[], dict[str, Any]]) -> None:
        self.ledger, self.snapshot = ledger, snapshot  # snapshot(): Cube state summary, {} when unknown

    def intent(self, *, kind: str, target: str, reason: str, request_id: str, evidence: dict[str, Any]) -> str:
        bundle = target if len(target) == 64 and all(c in "0123456789abcdef" for c in target) else None
        self.ledger.write_intent({
            "id": request_id, "kind": kind, "target": target, "reason": reason or kind, "requested_by": "rollout",
            "proposed": {"kind": kind, "target_bundle": bundle, "reason": reason}, "evidence": [evidence],
            "before": self.snapshot()})
        return request_id

    def finish(self, action_id: str, status: str, detail: str = "") -> None:
        self.ledger.mark(action_id, "done" if status == "done" else "failed",
                         {"rollout_status": status, "detail": detail[:2000]})

    def history(self) -> list[ActionRecord]:
        return self.ledger.history(self.ledger.clock.time() - 86400)
