"""Fakes for unit tests of the controller's logic only: an in-memory Cube, a scripted judge, an action log."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, get_args

from samantha.core.clock import Clock, SimClock
from samantha.core.domain import ActionKind
from samantha.cube.protocol import CubeError, CubeState, MutationResult, QuarantineEntry, SlotState, Weights
from samantha.gates.rollout_policy import StepVerdict
from samantha.gates.verdict import Status
from samantha.kernel.policy import ActionRecord
from samantha.rollout.bundle_check import BundleInfo, BundleRejected

OLD, NEW = "a" * 64, "b" * 64


class Crash(BaseException):
    """Stands for the process dying between the Cube applying a call and us recording it."""


class FakeCube:
    def __init__(self, clock: SimClock, bundles: dict[str, str]) -> None:
        self.clock, self.bundles = clock, bundles  # path -> bundle id
        self.slot = {"A": OLD, "B": None}
        self.active, self.weight, self.shadow, self.safe = "A", 0.0, False, False
        self.quarantined: dict[str, str] = {}
        self.seen: dict[str, tuple[str, MutationResult]] = {}
        self.applied: list[tuple[str, Any]] = []
        self.crash_on: str | None = None  # op name: apply it, then die before answering
        self.fail_on: dict[str, CubeError] = {}

    @property
    def standby(self) -> str:
        return "B" if self.active == "A" else "A"

    def state(self) -> CubeState:
        def s(n: str) -> SlotState:
            b = self.slot[n]
            return SlotState(name=n, role="active" if n == self.active else "standby", bundle_id=b,
                             loaded=b is not None, verified=b is not None, healthy=True)
        w = self.weight if self.slot[self.standby] not in self.quarantined else 0.0
        return CubeState(slots=[s("A"), s("B")], active=self.active, weights=Weights(active=100 - w, standby=w),
                         shadow=self.shadow, safe_mode=self.safe, generation=len(self.applied), ts=self.clock.time(),
                         quarantine=[QuarantineEntry(bundle_id=b, reason=r, at=0) for b, r in self.quarantined.items()])

    def _mutate(self, op: str, rid: str, arg: Any, apply: Callable[[], None]) -> MutationResult:
        if rid in self.seen:
            prev_op, res = self.seen[rid]
            assert prev_op == op, f"request id {rid} reused for {op}"
            return res.model_copy(update={"applied": False})
        if op in self.fail_on:
            raise self.fail_on[op]
        apply()
        self.applied.append((op, arg))
        res = MutationResult(request_id=rid, applied=True, state=self.state())
        self.seen[rid] = (op, res)
        if self.crash_on == op:
            self.crash_on = None
            raise Crash(op)
        return res

    def load(self, bundle: str, *, request_id: str) -> MutationResult:
        bid = self.bundles[bundle]
        if bid in self.quarantined:
            raise CubeError(409, "quarantined", "quarantined", "bundle")

        def apply() -> None:
            self.slot[self.standby], self.weight = bid, 0.0
        return self._mutate("load", request_id, bid, apply)

    def set_weights(self, standby: float, *, request_id: str) -> MutationResult:
        return self._mutate("weights", request_id, standby, lambda: setattr(self, "weight", standby))

    def set_shadow(self, enabled: bool, *, request_id: str) -> MutationResult:
        return self._mutate("shadow", request_id, enabled, lambda: setattr(self, "shadow", enabled))

    def flip(self, *, request_id: str) -> MutationResult:
        def apply() -> None:
            self.active, self.weight = self.standby, 0.0
        return self._mutate("flip", request_id, None, apply)

    def quarantine(self, bundle_id: str, *, reason: str, request_id: str) -> MutationResult:
        return self._mutate("quarantine", request_id, bundle_id, lambda: self.quarantined.setdefault(bundle_id, reason))

    def release(self, bundle_id: str, *, request_id: str) -> MutationResult:
        return self._mutate("release", request_id, bundle_id, lambda: self.quarantined.pop(bundle_id, None))

    def safe_mode(self, enabled: bool, *, request_id: str) -> MutationResult:
        return self._mutate("safe_mode", request_id, enabled, lambda: setattr(self, "safe", enabled))

    def ops(self, name: str) -> list[Any]:
        return [a for o, a in self.applied if o == name]


class ScriptedJudge:
    """status_for(step) decides; steps pass once `need_s` seconds elapsed in them."""

    def __init__(self, status_for: Callable[[Any], Status] | None = None, need_s: float = 0.0) -> None:
        self.status_for = status_for or (lambda step: "pass")
        self.need_s = need_s
        self.calls: list[tuple[Any, float]] = []

    def __call__(self, step: Any, now: float, rollout_start: float, step_start: float, bundle: str) -> StepVerdict:
        self.calls.append((step, now))
        st = self.status_for(step)
        if st == "pass" and now - step_start < self.need_s:
            st = "inconclusive"
        return StepVerdict(step=step, weight=0.0 if step == "shadow" else [1, 5, 25, 50, 100][step], status=st,
                           reason=f"scripted {st}", ts=now, canary_samples=500, min_samples=100,
                           elapsed_s=now - step_start, min_duration_s=self.need_s, verdicts=[])


def verifier(known: dict[str, BundleInfo]) -> Callable[[str], BundleInfo]:
    def verify(ref: str) -> BundleInfo:
        if ref not in known:
            raise BundleRejected("not_found", f"no bundle {ref!r}")
        return known[ref]
    return verify


class MemoryActionLog:
    """The controller's ActionRecorder in memory (the daemon's is RolloutActions over the actions ledger)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.rows: dict[str, dict[str, Any]] = {}

    def intent(self, *, kind: str, target: str, reason: str, request_id: str, evidence: dict[str, Any]) -> str:
        aid = uuid.uuid4().hex[:16]
        self.rows[aid] = {"ts": self.clock.time(), "kind": kind, "target": target, "reason": reason,
                          "request_id": request_id, "status": "intent", "evidence": evidence, "detail": ""}
        return aid

    def finish(self, action_id: str, status: str, detail: str = "") -> None:
        # an intent from before a restart is unknown here: record the outcome anyway
        self.rows.setdefault(action_id, {"ts": self.clock.time(), "kind": "?", "target": "?", "reason": "",
                                         "request_id": "", "evidence": {}})
        self.rows[action_id].update(status=status, detail=detail, done_ts=self.clock.time())

    def history(self) -> list[ActionRecord]:
        kinds = get_args(ActionKind)  # what the kernel's limits count (not load, weights, shadow)
        return [ActionRecord(ts=r["ts"], kind=r["kind"], requested_by="rollout", target=r["target"])
                for r in self.rows.values() if r["status"] == "done" and r["kind"] in kinds]
