"""Applying a verified Recall at the Cube, through the daemon's one action path.

`apply_recall` asks the kernel for the next step (`samantha/kernel/recall.py`) on fresh Cube state, runs it
through `SreNodes.act_now` (kernel check, write-ahead intent, the Cube call: the same path as a playbook's
flip or quarantine, confirmed from telemetry by the verify node like any other), and repeats until the
kernel says done or blocked. Action ids derive from the recall's nonce and the step, so a recall received
again after a crash completes the same rows and never flips twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from samantha.cube.protocol import CubeError
from samantha.kernel.recall import next_recall_step
from samantha.loop.nodes import SreNodes

MAX_STEPS = 4  # flip, abort, quarantine: a plan never needs more; a step that does not move the Cube stops it


@dataclass
class RecallOutcome:
    status: Literal["applied", "blocked"]
    reason: str = ""
    was_active: bool = False
    actions: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "reason": self.reason, "was_active": self.was_active, "actions": self.actions}


def apply_recall(nodes: SreNodes, bundle_id: str, nonce: str, reason: str) -> RecallOutcome:
    """Take `bundle_id` out of service here: flip off it to the last-known-good bundle if it is active, stop
    any traffic to it, quarantine it. Blocked (with the reason) when the kernel refuses a step."""
    with nodes.acting:  # every step on state no playbook action can change under it
        return _apply(nodes, bundle_id, nonce, reason)


def _apply(nodes: SreNodes, bundle_id: str, nonce: str, reason: str) -> RecallOutcome:
    out = RecallOutcome("blocked")
    seen: list[str] = []
    for _ in range(MAX_STEPS):
        try:
            cube = nodes.d.cube.state()
        except CubeError as e:
            out.reason = f"the Cube is unreachable: {e.reason}"
            return out
        if not seen:
            out.was_active = cube.slot("active").bundle_id == bundle_id
        step = next_recall_step(nodes.kernel_view(cube), bundle_id, reason)
        if step.status != "act":
            out.status, out.reason = ("applied" if step.status == "done" else "blocked"), step.reason
            return out
        assert step.action is not None
        kind = step.action.kind
        if kind in seen:
            out.reason = f"{kind} did not take effect at the Cube"
            return out
        seen.append(kind)
        res = nodes.act_now(step.action, f"recall-{nonce[:24]}-{kind}", cube,
                            [{"recall": {"bundle_id": bundle_id, "nonce": nonce, "reason": reason}}])
        out.actions.append({k: res.get(k) for k in ("id", "kind", "status", "reasons", "note") if res.get(k)})
        if res["status"] not in ("done", "verified"):
            detail = "; ".join(res.get("reasons") or []) or res.get("note") or res.get("reason") or res["status"]
            out.reason = f"{kind} {res['status']}: {detail}"
            return out
    out.reason = "the recall did not converge"
    return out
