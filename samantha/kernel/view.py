"""The one view that turns the Cube's state into the safety kernel's input. Pure.

Every requester judged by the kernel (the SRE loop's playbooks, the rollout controller, chaos pre-flight)
builds its `CubeSnapshot` with `kernel_snapshot`, so they all judge the same facts the same way.

What "a rollout is in progress" means, once:

    rollout_in_progress = the controller's record says a rollout is active
                          OR the Cube shows the standby taking traffic (standby weight > 0 or shadow on)

Either side alone misses cases. The controller's record covers the phases where the Cube shows nothing
yet or any more (loading the bundle, between a shadow-off and a weight change, flipping). The Cube covers
a canary the controller does not know of (weights or shadow set by an operator or another tool, a
controller not installed, a record not resumed yet after a restart). The union is the conservative
answer for the rules that read it: no fault is injected while either holds, and an advance is only ever
judged during one.
"""

from __future__ import annotations

from samantha.core.cube_state import CubeState
from samantha.core.domain import RolloutMark, SlotRole
from samantha.kernel.policy import CubeSnapshot, SlotState


def rollout_in_progress(state: CubeState, rollout: RolloutMark | None) -> bool:
    """The controller's record says a rollout is active, or the standby takes live or mirrored traffic."""
    return (rollout is not None and rollout.active) or state.standby_takes_traffic


def kernel_snapshot(state: CubeState, rollout: RolloutMark | None, known_good: frozenset[str]) -> CubeSnapshot:
    """The kernel's snapshot of the Cube now: slots, weights (0..1), quarantine, safe mode, rollout, known-good."""
    def slot(role: SlotRole) -> SlotState:
        s = state.slot(role)
        return SlotState(bundle=s.bundle_id, healthy=s.healthy, loaded=s.loaded, verified=s.verified)

    return CubeSnapshot(active=slot("active"), standby=slot("standby"),
                        weights={"active": state.weights.active / 100, "standby": state.weights.standby / 100},
                        quarantined=frozenset(q.bundle_id for q in state.quarantine), safe_mode=state.safe_mode,
                        rollout_in_progress=rollout_in_progress(state, rollout), known_good=frozenset(known_good))
