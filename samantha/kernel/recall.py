"""A Recall at the Cube: the next action that takes a recalled bundle out of service, or why none can. Pure.

A Recall (published at the root for one bundle id, docs/hub.md) means: this bundle must not serve here.
`next_recall_step(state, bundle)` looks at the Cube now and answers one step at a time, so the caller
re-reads the Cube after each action and a crash between two steps resumes from what the Cube shows:

- the bundle serves as active: flip to the standby, **only** when the standby is a last-known-good bundle
  (loaded, healthy, verified, not quarantined, in the known-good set). Otherwise the recall is blocked: a
  Cube never trades a recalled bundle for one nobody vouched for; it keeps serving and says why;
- the bundle takes standby traffic (a canary, shadow): abort the rollout (weights to 0, shadow off);
- the bundle is anywhere else and not yet quarantined: quarantine it (it can never be loaded again);
- quarantined and serving nothing: done.

Every action it proposes is still judged by `policy.decide` (scope `operator`: the recall is a signed act
of the root), so the flip rate limit and every other invariant hold for a recall as for a local rollback.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from samantha.kernel.policy import CubeSnapshot, ProposedAction

StepStatus = Literal["act", "done", "blocked"]


@dataclass(frozen=True)
class RecallStep:
    status: StepStatus
    action: ProposedAction | None = None  # set iff status == "act"
    reason: str = ""  # blocked: why; act: what the action is for


def last_known_good_standby(state: CubeSnapshot, recalled: str) -> str | None:
    """Why the standby is not a last-known-good bundle to flip to instead of `recalled`, or None when it is."""
    s = state.standby
    if s.bundle is None or not s.loaded:
        return "the standby slot holds no bundle"
    if s.bundle == recalled:
        return "the standby slot holds the same bundle"
    if s.bundle in state.quarantined:
        return f"the standby bundle {s.bundle[:16]} is quarantined"
    if not (s.healthy and s.verified):
        return f"the standby bundle {s.bundle[:16]} is not healthy and verified"
    if s.bundle not in state.known_good:
        return f"the standby bundle {s.bundle[:16]} is not known-good on this Cube"
    return None


def next_recall_step(state: CubeSnapshot, bundle: str, why: str) -> RecallStep:
    """The next action for a recall of `bundle` on a Cube in `state` (see the module doc)."""
    def act(kind: str, reason: str, **fields: str) -> RecallStep:
        text = f"recall of {bundle[:16]}: {reason} ({why})"[:2000]
        return RecallStep("act", ProposedAction(kind=kind, scope="operator", requested_by="operator",  # type: ignore[arg-type]
                                                reason=text, **fields), reason)

    if state.active.bundle == bundle:
        blocked = last_known_good_standby(state, bundle)
        if blocked is not None:
            return RecallStep("blocked", reason=f"the recalled bundle is active and {blocked}: it keeps serving "
                                                "until a last-known-good bundle is in the standby slot")
        assert state.standby.bundle is not None
        return act("flip", f"flip to the last-known-good bundle {state.standby.bundle[:16]}",
                   target_slot="standby", target_bundle=state.standby.bundle)
    in_standby = state.standby.bundle == bundle
    if in_standby and (state.weights.get("standby", 0.0) > 0 or state.rollout_in_progress):
        return act("abort_rollout", "take the standby's traffic off it", target_slot="standby")
    if bundle not in state.quarantined:
        return act("quarantine", "quarantine it", target_bundle=bundle,
                   **({"target_slot": "standby"} if in_standby else {}))
    return RecallStep("done", reason="quarantined and serving nothing")
