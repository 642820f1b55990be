"""The Cube's side of Plans with Constraints: start a Plan's rollout only when the kernel says its Constraints
hold, and say why it waits.

`PlanRunner.tick(plans, now, safe_mode=...)` runs before every rollout tick (the daemon's cycle) over the Plans
of the policy module in force. Per Plan, in module order:

- already started (or its bundle already active): nothing more, ever (a Plan starts at most once per Cube;
  the rollout's request id is `plan-<id>`, so a restart mid-start is the controller's idempotent start);
- `samantha.kernel.plans.evaluate` (window, minimum Samantha version, required active bundle), safe mode and
  another rollout in progress: waits with every reason that holds it back, or starts the rollout through
  `RolloutController.start` (which verifies the bundle and refuses a quarantined one; a refusal is a reason to
  wait, retried next tick).

What it decided is persisted in `<data_dir>/plans.json` (atomically, on each change of status or reasons) and
each change is an audit record (`plan_waiting`, `plan_started`, `plan_done`), which the uplink reports upward
like any other.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from samantha.core.clock import Clock
from samantha.core.fsutil import atomic_write
from samantha.cube.protocol import CubeError
from samantha.kernel.plans import Plan, evaluate
from samantha.rollout.bundle_check import BundleRejected
from samantha.rollout.controller import RolloutController, RolloutRefused

AuditFn = Callable[[str, dict[str, Any]], Any]


class PlanRunner:
    def __init__(self, controller: RolloutController, path: str | Path, clock: Clock, *, samantha_version: str,
                 audit: AuditFn | None = None) -> None:
        self.ctl, self.path, self.clock, self.version = controller, Path(path), clock, samantha_version
        self.audit = audit
        self._lock = threading.Lock()
        try:
            self._plans: dict[str, dict[str, Any]] = json.loads(self.path.read_text())
        except FileNotFoundError:
            self._plans = {}

    def status(self) -> list[dict[str, Any]]:
        with self._lock:
            return [{"id": k, **v} for k, v in self._plans.items()]

    def tick(self, plans: list[Plan], now: float | None = None, *, safe_mode: bool = False) -> list[dict[str, Any]]:
        now = self.clock.time() if now is None else now
        with self._lock:
            for plan in plans:
                if self._plans.get(plan.id, {}).get("status") in ("started", "done"):
                    continue
                self._step(plan, now, safe_mode)
            return [{"id": p.id, **self._plans.get(p.id, {})} for p in plans]

    def _step(self, plan: Plan, now: float, safe_mode: bool) -> None:
        try:
            state = self.ctl.cube.state()
        except CubeError as e:
            return self._record(plan, now, "waiting", [f"cube: unreachable ({e.reason})"])
        active = state.slot("active").bundle_id
        if active is not None and active.startswith(plan.bundle):
            return self._record(plan, now, "done", [f"bundle {plan.bundle[:16]} is already active"])
        verdict = evaluate(plan, now, self.version, active)
        waiting = (["safe mode: no rollouts"] if safe_mode else []) + verdict.waiting
        rollout = self.ctl.status()
        if rollout.rollout is not None and rollout.rollout.active and rollout.rollout.request_id != self._rid(plan):
            waiting.append(f"rollout: {rollout.rollout.id} is {rollout.phase}")
        if waiting:  # every reason at once: a Cube that waits says all it waits for
            return self._record(plan, now, "waiting", waiting, next_window_at=verdict.next_window_at)
        try:
            st = self.ctl.start(plan.bundle, self._rid(plan))
        except RolloutRefused as e:
            if e.code == "already_active":  # named by directory: the id check above could not tell
                return self._record(plan, now, "done", [f"rollout: {e.reason}"])
            return self._record(plan, now, "waiting", [f"rollout refused: {e.code}: {e.reason}"])
        except BundleRejected as e:
            return self._record(plan, now, "waiting", [f"bundle rejected: {e.kind}: {e.reason}"])
        rid = st.rollout.id if st.rollout is not None else None
        self._record(plan, now, "started", [], rollout_id=rid, started_at=now)

    @staticmethod
    def _rid(plan: Plan) -> str:
        return f"plan-{plan.id}"

    def _record(self, plan: Plan, now: float, status: str, reasons: list[str], **extra: Any) -> None:
        prev = self._plans.get(plan.id, {})
        # the window's countdown changes every tick; what it waits for does not: audit on a change of kind
        said = [r.split(":")[0] for r in reasons]
        self._plans[plan.id] = {"status": status, "bundle": plan.bundle, "waiting": reasons, "at": now,
                                **{k: v for k, v in prev.items() if k in ("rollout_id", "started_at")}, **extra}
        self._plans[plan.id]["said"] = said
        if prev.get("status") == status and prev.get("said") == said:
            return
        if self.audit is not None:
            kind = {"waiting": "plan_waiting", "started": "plan_started", "done": "plan_done"}[status]
            self.audit(kind, {"plan": plan.id, **self._plans[plan.id]})
        atomic_write(self.path, json.dumps(self._plans, sort_keys=True, indent=1).encode())
