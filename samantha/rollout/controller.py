"""The progressive-rollout controller: an explicit state machine, persisted at every transition.

    idle -> loading -> [shadow] -> step 1% -> 5% -> 25% -> 50% -> soak (100%) -> flipping -> promoted
                 \\__________ any failing verdict: weights 0, shadow off, quarantine, alert __/ -> aborted

- `start` verifies the bundle (signature, files, expiry), refuses a quarantined one, and loads it
  into the standby slot (the Cube verifies again).
- `tick(now)` (the daemon calls it >= 4 times a second) judges the current phase with the rollout
  policy's gates (`judge_step`) and moves on when a phase passes, or snaps back when one fails.
- A regression snaps the weights to the active slot first and records afterwards: taking traffic
  off a bad bundle is idempotent and only ever safe, so it waits for nothing. Every other Cube
  call goes through the safety kernel and is recorded write-ahead (intent, call, result), with a
  request id derived from the rollout id and a sequence number, so a restart re-sends an
  unfinished call with the same id and the Cube applies it at most once.
- Every decision carries the StepVerdict it rests on.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, Literal

from samantha.core.clock import REAL_CLOCK, Clock
from samantha.core.config import PolicyConfig
from samantha.core.domain import RolloutMark
from samantha.cube.protocol import CubeError, CubeRuntime, CubeState, MutationResult
from samantha.gates.actions import Alert, Quarantine
from samantha.gates.engine import GateEngine
from samantha.gates.registry import GateRegistry
from samantha.gates.rollout_policy import RolloutPolicy, StepVerdict, judge_step
from samantha.kernel.policy import CubeSnapshot, ProposedAction, decide
from samantha.kernel.view import kernel_snapshot
from samantha.loop.action_log import ActionRecorder
from samantha.loop.known_good import KnownGood
from samantha.rollout.bundle_check import BundleInfo, BundleRejected
from samantha.rollout.record import (
    MAX_DECISIONS,
    Decision,
    DecisionKind,
    Pending,
    RolloutRecord,
    RolloutStatus,
    RolloutStore,
)

StepRef = int | Literal["shadow"]
Judge = Callable[[StepRef, float, float, float, str], StepVerdict]  # step, now, rollout_start, step_start, bundle
AlertSink = Callable[[str, str, dict[str, Any]], None]  # severity, summary, evidence


class RolloutRefused(Exception):
    """The request cannot be served now. `status` is the HTTP status the API answers with."""

    def __init__(self, status: int, code: str, reason: str, field: str | None = None):
        self.status, self.code, self.reason, self.field = status, code, reason, field
        super().__init__(f"{code}: {reason}")


def gate_judge(engine: GateEngine, policy: RolloutPolicy, registry: GateRegistry | None = None) -> Judge:
    """The production judge: the rollout policy's gates over the telemetry store."""
    reg = registry or GateRegistry.with_builtins()

    def judge(step: StepRef, now: float, rollout_start: float, step_start: float, bundle: str) -> StepVerdict:
        return judge_step(engine, policy, step, now, rollout_start=rollout_start, step_start=step_start,
                          registry=reg, canary_bundle=bundle)
    return judge


class RolloutController:
    def __init__(self, cube: CubeRuntime, judge: Judge, policy: RolloutPolicy, clock: Clock = REAL_CLOCK, *,
                 verify: Callable[[str], BundleInfo], store: RolloutStore, actions: ActionRecorder,
                 kernel: PolicyConfig | None = None, alert: AlertSink | None = None,
                 max_step_s: float = 1800.0, known_good: KnownGood | None = None) -> None:
        self.cube, self.judge, self.policy, self.clock = cube, judge, policy, clock
        self.verify, self.store, self.actions, self.alert = verify, store, actions, alert
        self.kernel = kernel or PolicyConfig()
        self.max_step_s = max_step_s  # a phase that stays inconclusive this long aborts (no quarantine)
        self._lock = threading.RLock()
        self._rec: RolloutRecord | None = store.latest()
        self._published: RolloutRecord | None = self._rec.model_copy(deep=True) if self._rec else None
        self._last_verdict: StepVerdict | None = None
        self._cube_state: CubeState | None = None
        self.known_good = known_good if known_good is not None else KnownGood()  # the Cube's one set (the daemon's)
        self._next: tuple[RolloutPolicy, Judge] | None = None
        if self._rec is not None and self._rec.last_known_good:
            self.known_good.add(self._rec.last_known_good, source="rollout",
                                reason=f"rollout {self._rec.id}: last-known-good standby")

    # ------------------------------------------------------------------ public API

    def adopt(self, policy: RolloutPolicy, judge: Judge) -> None:
        """Use this policy from the next rollout; one in progress finishes under the policy it started with."""
        with self._lock:
            self._next = (policy, judge)

    def mark(self) -> RolloutMark | None:
        """The newest record as the kernel's view reads it (the copy taken at the last save: any thread)."""
        rec = self._published
        return rec.mark() if rec is not None else None

    def kernel_view(self, state: CubeState) -> CubeSnapshot:
        """The kernel's snapshot this controller's Cube calls are judged on (samantha/kernel/view.py)."""
        rec = self._rec
        return kernel_snapshot(state, rec.mark() if rec is not None else None, self.known_good.snapshot())

    def status(self) -> RolloutStatus:
        rec = self._published  # a copy taken at the last save: safe to read from any thread
        busy = not self._lock.acquire(blocking=False)
        if not busy:
            self._lock.release()
        return RolloutStatus(phase=rec.phase if rec else "idle", weight=rec.weight if rec else 0.0,
                             rollout=rec, last_verdict=self._last_verdict,
                             busy=busy)

    def start(self, bundle: str, request_id: str) -> RolloutStatus:
        """Verify, load into standby, begin. Raises RolloutRefused (4xx) or BundleRejected (422)."""
        with self._lock:
            rec = self._rec
            if rec is not None and rec.request_id == request_id:
                if rec.bundle_ref != bundle:
                    raise RolloutRefused(409, "request_id_reused", f"request id {request_id} started a rollout "
                                         f"of {rec.bundle_ref!r}, not {bundle!r}", "request_id")
                return self.status()  # the same start again: idempotent
            if rec is not None and rec.active:
                raise RolloutRefused(409, "rollout_in_progress", f"rollout {rec.id} of {rec.bundle_label} is "
                                     f"{rec.phase}; abort it first")
            info = self.verify(bundle)  # BundleRejected propagates: bad input, nothing recorded
            now = self.clock.time()
            if info.expires_at - now < self._rollout_min_s():
                raise BundleRejected("expired", f"{info.label} expires in {info.expires_at - now:.0f} s, before "
                                     f"a rollout could finish ({self._rollout_min_s():.0f} s)")
            state = self._state()
            if state.is_quarantined(info.bundle_id):
                raise RolloutRefused(409, "quarantined", f"bundle {info.label} ({info.bundle_id[:16]}) is "
                                     "quarantined on this Cube", "bundle")
            if state.safe_mode:
                raise RolloutRefused(409, "safe_mode", "the Cube is in safe mode: no rollouts")
            if state.slot("active").bundle_id == info.bundle_id:
                raise RolloutRefused(409, "already_active", f"{info.label} is already the active bundle", "bundle")
            if self._next is not None:
                (self.policy, self.judge), self._next = self._next, None
            self._rec = RolloutRecord(
                id=f"ro{int(now)}{uuid.uuid4().hex[:6]}", request_id=request_id, bundle_ref=bundle,
                bundle_path=info.path, bundle_id=info.bundle_id, bundle_label=info.label,
                expires_at=info.expires_at, policy_name=self.policy.name, policy_version=self.policy.version,
                steps=[s.weight for s in self.policy.steps], phase="loading", started_at=now, updated_at=now,
                prior_active_bundle=state.slot("active").bundle_id)
            self._last_verdict = None
            self._save()
            if self._call("load", "load", None, lambda rid: self.cube.load(info.path, request_id=rid),
                          reason=f"rollout {self._rec.id}: load {info.label} into standby",
                          args={"bundle": info.path}) is None:
                self._end("failed", self._rec.decisions[-1].detail)
                return self.status()
            self._enter_first_phase()
            return self.status()

    def abort(self, reason: str) -> RolloutStatus:
        """Operator abort: traffic back to the active slot, no quarantine (nothing was proven bad)."""
        if not reason.strip():
            raise RolloutRefused(422, "invalid", "an abort needs a reason", "reason")
        with self._lock:
            rec = self._rec
            if rec is None or not rec.active:
                raise RolloutRefused(409, "no_rollout", "no rollout is in progress")
            self._snap_back(f"operator abort: {reason}", None)
            self._end("aborted", f"operator abort: {reason}")
            return self.status()

    def hold(self, reason: str, hold_s: float) -> bool:
        """A playbook's hold_rollout: judging goes on (a regression still aborts), but no step advances and
        no flip happens for `hold_s` seconds. Returns whether a rollout was in progress to hold."""
        with self._lock:
            rec = self._rec
            if rec is None or not rec.active:
                return False
            now = self.clock.time()
            rec.held_until = max(rec.held_until or 0.0, now + hold_s)
            self._note("hold", rec.bundle_id, reason, "done", f"held for {hold_s:g} s (until {rec.held_until:.0f})",
                       None)
            self._save()
            return True

    def _held(self, now: float) -> bool:
        rec = self._rec
        return rec is not None and rec.held_until is not None and now < rec.held_until

    def tick(self, now: float | None = None) -> RolloutStatus | None:
        """One evaluation cycle. Never blocks: a tick that finds start/abort running is skipped."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            rec = self._rec
            if rec is None or not rec.active:
                return None
            now = self.clock.time() if now is None else now
            if rec.pending is not None:
                self._resume_pending()
                if not rec.active:
                    return self.status()
            if rec.phase == "loading":
                self._enter_first_phase()
            elif rec.phase in ("shadow", "step", "soak"):
                self._judge(now)
            elif rec.phase == "flipping" and self._held(now):
                pass
            elif rec.phase == "flipping":
                if rec.step_start is not None and now - rec.step_start > self.max_step_s:
                    waited = now - rec.step_start
                    why = next((d.detail for d in reversed(rec.decisions) if d.kind == "flip"), "")
                    self._snap_back(f"flip not possible for {waited:.0f} s: {why}", None)
                    self._end("aborted", f"flip refused for {waited:.0f} s: {why}")
                else:
                    self._flip()
            return self.status()
        finally:
            self._lock.release()

    # ------------------------------------------------------------------ phases

    def _rollout_min_s(self) -> float:
        p = self.policy
        return (p.shadow.min_duration if p.shadow.enabled else 0) + sum(s.min_duration for s in p.steps) + p.soak

    def _enter_first_phase(self) -> None:
        rec = self._rec
        assert rec is not None
        now = self.clock.time()
        rec.rollout_start = now
        if self.policy.shadow.enabled:
            if self._call("shadow", "shadow_on", "advance_rollout",
                          lambda rid: self.cube.set_shadow(True, request_id=rid),
                          reason="score the canary on mirrored traffic before any user sees it",
                          args={"enabled": True, "enter": "shadow"}) is None:
                return self._fail_setup()
            rec.shadow_on = True
            rec.phase, rec.step, rec.step_start = "shadow", None, self.clock.time()
            self._save()
        else:
            self._enter_step(0, None)

    def _enter_step(self, i: int, evidence: StepVerdict | None) -> None:
        rec = self._rec
        assert rec is not None
        w = rec.steps[i]
        if self._call("weights", "weights", "advance_rollout",
                      lambda rid: self.cube.set_weights(w, request_id=rid),
                      reason=f"step {i + 1}/{len(rec.steps)}: {w:g}% of traffic to {rec.bundle_label}",
                      args={"standby": w, "step": i}, evidence=evidence) is None:
            return self._fail_setup()
        rec.phase = "soak" if w >= 100 else "step"
        rec.step, rec.step_start = i, self.clock.time()
        self._save()

    def _judge(self, now: float) -> None:
        rec = self._rec
        assert rec is not None and rec.rollout_start is not None and rec.step_start is not None
        ref: StepRef = "shadow" if rec.phase == "shadow" else int(rec.step or 0)
        v = self.judge(ref, now, rec.rollout_start, rec.step_start, rec.bundle_id)
        self._last_verdict = v
        if v.status == "fail":
            self._regression(v)
        elif v.status == "pass" and self._held(now):
            return  # passed, but held: stay at this step (re-judged next tick)
        elif v.status == "pass":
            rec.step_verdicts.append(v)
            nxt = 0 if ref == "shadow" else int(ref) + 1
            if nxt < len(rec.steps):
                self._enter_step(nxt, v)
            else:
                rec.phase, rec.step_start = "flipping", now
                self._save()
                self._flip()
        elif now - rec.step_start > self.max_step_s + v.min_duration_s:
            rec.step_verdicts.append(v)
            self._snap_back(f"stalled: {rec.phase} inconclusive for {now - rec.step_start:.0f} s ({v.reason})", v)
            self._end("aborted", f"stalled in {rec.phase}: {v.reason}")

    def fail(self, reason: str) -> bool:
        """A playbook saw the canary regress: the same as a failing step (snap back, then the policy's
        on-failure actions, quarantine included). Returns whether a rollout was in progress."""
        with self._lock:
            rec = self._rec
            if rec is None or not rec.active:
                return False
            self._fail(reason, None, self.policy.on_failure)
            return True

    def _regression(self, v: StepVerdict) -> None:
        rec = self._rec
        assert rec is not None
        rec.step_verdicts.append(v)
        where = "shadow scoring" if v.step == "shadow" else f"step {int(v.step) + 1} ({v.weight:g}%)"
        self._fail(f"regression at {where}: {v.reason}", v, v.actions or self.policy.on_failure)

    def _fail(self, reason: str, v: StepVerdict | None, actions: Any) -> None:
        rec = self._rec
        assert rec is not None
        self._snap_back(reason, v)
        rec.ended_at = self.clock.time()
        for action in actions:
            if isinstance(action, Quarantine):
                self._quarantine(reason, v)
            elif isinstance(action, Alert):
                self._alert(action.severity, f"rollout of {rec.bundle_label} aborted: {reason}", v)
        self._end("aborted", reason)

    def _snap_back(self, reason: str, v: StepVerdict | None) -> None:
        """Weights to 0 and shadow off at once; recorded after (see the module doc)."""
        rec = self._rec
        assert rec is not None
        state = self._cube_state
        if state is not None:  # the kernel judges on the last state seen: no extra round trip
            d = self._kernel("abort_rollout", reason, None, state)
            if not d[0]:
                self._note("abort", rec.bundle_id, reason, "refused", d[1], v)
        t0 = time.perf_counter()
        for op, kind, fn, args in (
                ("weights", "weights", lambda rid: self.cube.set_weights(0, request_id=rid), {"standby": 0}),
                ("shadow", "shadow_off", lambda rid: self.cube.set_shadow(False, request_id=rid), {"enabled": False})):
            if op == "shadow" and not rec.shadow_on:
                continue
            rid = self._rid(op)
            try:
                res = fn(rid)
                self._cube_state = res.state
                ok, detail = True, f"{(time.perf_counter() - t0) * 1000:.1f} ms after the decision"
            except CubeError as e:
                ok, detail = False, e.reason
            if op == "shadow" and ok:
                rec.shadow_on = False
            aid = self.actions.intent(kind="abort_rollout", target=rec.bundle_id, reason=reason, request_id=rid,
                                      evidence=_evidence(v) | {"args": args})
            self.actions.finish(aid, "done" if ok else "failed", detail)
            self._note(kind, rec.bundle_id, reason, "done" if ok else "failed", detail, v, rid,
                       (time.perf_counter() - t0) * 1000, corrective=True)
        rec.step_start, rec.snapped = None, True
        self._save()

    def _quarantine(self, reason: str, v: StepVerdict | None) -> None:
        rec = self._rec
        assert rec is not None
        if self._call("quarantine", "quarantine", "quarantine",
                      lambda rid: self.cube.quarantine(rec.bundle_id, reason=reason[:1000], request_id=rid),
                      reason=reason, args={"bundle_id": rec.bundle_id}, evidence=v, target_slot="standby") is not None:
            rec.quarantined = True

    def _alert(self, severity: str, summary: str, v: StepVerdict | None) -> None:
        rec = self._rec
        assert rec is not None
        self._note("alert", rec.bundle_id, summary, "done", severity, v, corrective=True)
        if self.alert is not None:
            self.alert(severity, summary, _evidence(v))

    def _flip(self) -> None:
        rec = self._rec
        assert rec is not None
        if rec.shadow_on:
            if self._call("shadow", "shadow_off", "advance_rollout",
                          lambda rid: self.cube.set_shadow(False, request_id=rid),
                          reason="soak passed: stop mirroring before the flip", args={"enabled": False}) is None:
                return
            rec.shadow_on = False
        evidence = rec.step_verdicts[-1] if rec.step_verdicts else None
        res = self._call("flip", "flip", "flip", lambda rid: self.cube.flip(request_id=rid),
                         reason=f"every step and the soak passed: promote {rec.bundle_label}", args={},
                         evidence=evidence, target_slot="standby", quiet_refusal=True)
        if res is None:
            last = rec.decisions[-1] if rec.decisions else None
            if last is not None and last.kind == "flip" and last.result == "failed":
                self._snap_back(f"flip failed: {last.detail}", evidence)
                self._end("aborted", f"flip failed: {last.detail}")
            return  # refused by the kernel (e.g. flip rate limit): stay at 100% and retry next tick
        self._promoted(res.state)

    def _promoted(self, state: CubeState) -> None:
        rec = self._rec
        assert rec is not None
        if state.slot("active").bundle_id != rec.bundle_id:
            self._end("failed", f"after the flip the active slot holds {state.slot('active').bundle_id}")
            return
        rec.last_known_good = state.slot("standby").bundle_id
        self.known_good.add(rec.last_known_good, source="rollout", reason=f"rollout {rec.id}: the bundle it replaced")
        self.known_good.add(rec.bundle_id, source="rollout", reason=f"rollout {rec.id}: promoted")
        self._note("promote", rec.bundle_id, f"{rec.bundle_label} is active; last-known-good standby: "
                   f"{(rec.last_known_good or '-')[:16]}", "done", "", rec.step_verdicts[-1] if rec.step_verdicts
                   else None)
        self._end("promoted", "every step, the soak and the flip passed")

    def _fail_setup(self) -> None:
        rec = self._rec
        assert rec is not None
        why = rec.decisions[-1].detail if rec.decisions else "setup failed"
        self._snap_back(f"setup failed: {why}", None)
        self._end("failed", why)

    def _end(self, phase: Literal["promoted", "aborted", "failed"], reason: str) -> None:
        rec = self._rec
        assert rec is not None
        rec.phase, rec.reason = phase, reason
        rec.ended_at = rec.ended_at or self.clock.time()
        rec.step_start = None
        self._save()

    # ------------------------------------------------------------------ Cube calls

    def _rid(self, op: str) -> str:
        rec = self._rec
        assert rec is not None
        rec.seq += 1
        return f"{rec.id}-{rec.seq}-{op}"

    def _state(self) -> CubeState:
        try:
            self._cube_state = self.cube.state()
        except CubeError as e:
            raise RolloutRefused(503, "cube_unreachable", f"cannot read the Cube's state: {e.reason}") from None
        return self._cube_state

    def _kernel(self, kind: str, reason: str, target_slot: str | None, state: CubeState) -> tuple[bool, str]:
        rec = self._rec
        assert rec is not None
        action = ProposedAction(kind=kind, scope="rollout", requested_by="rollout", reason=reason[:2000],
                                target_slot=target_slot,
                                target_bundle=rec.bundle_id if kind in ("quarantine", "flip") else None)
        d = decide(action, self.kernel_view(state), self.actions.history(), self.clock.time(), self.kernel)
        return d.allowed, d.explain()

    def _call(self, op: Literal["load", "shadow", "weights", "flip", "quarantine"], kind: DecisionKind,
              kernel_kind: str | None, fn: Callable[[str], MutationResult], *, reason: str, args: dict[str, Any],
              evidence: StepVerdict | None = None, target_slot: str | None = None,
              quiet_refusal: bool = False) -> MutationResult | None:
        """Kernel check, intent (persisted), the call, the result (persisted). None when refused or failed."""
        rec = self._rec
        assert rec is not None
        if kernel_kind is not None:
            try:
                state = self._state()
            except RolloutRefused as e:
                self._note(kind, rec.bundle_id, reason, "failed", e.reason, evidence)
                return None
            ok, why = self._kernel(kernel_kind, reason, target_slot, state)
            if not ok:
                last = rec.decisions[-1] if rec.decisions else None
                if not (quiet_refusal and last is not None and last.kind == kind and last.detail == why):
                    self._note(kind, rec.bundle_id, reason, "refused", why, evidence)
                    self._save()
                return None
        rid = self._rid(op)
        aid = self.actions.intent(kind=kernel_kind or op, target=rec.bundle_id, reason=reason, request_id=rid,
                                  evidence=_evidence(evidence) | {"args": args})
        rec.pending = Pending(op=op, request_id=rid, args=args, ts=self.clock.time(), action_id=aid)
        self._save()
        return self._send(kind, fn, rid, aid, reason, evidence)

    def _send(self, kind: DecisionKind, fn: Callable[[str], MutationResult], rid: str, aid: str | None,
              reason: str, evidence: StepVerdict | None) -> MutationResult | None:
        rec = self._rec
        assert rec is not None
        t0 = time.perf_counter()
        try:
            res = fn(rid)
        except CubeError as e:
            ms = (time.perf_counter() - t0) * 1000
            if aid:
                self.actions.finish(aid, "failed", e.reason)
            rec.pending = None
            self._note(kind, rec.bundle_id, reason, "failed", f"{e.code}: {e.reason}", evidence, rid, ms)
            self._save()
            return None
        ms = (time.perf_counter() - t0) * 1000
        self._cube_state = res.state
        if aid:
            self.actions.finish(aid, "done", "applied" if res.applied else "already applied (same request id)")
        rec.pending = None
        self._note(kind, rec.bundle_id, reason, "done", "" if res.applied else "completed after restart", evidence,
                   rid, ms)
        self._save()
        return res

    def _resume_pending(self) -> None:
        """After a restart: finish the call whose intent was recorded, with the same request id."""
        rec = self._rec
        assert rec is not None and rec.pending is not None
        p = rec.pending
        fns: dict[str, Callable[[str], MutationResult]] = {
            "load": lambda rid: self.cube.load(p.args["bundle"], request_id=rid),
            "shadow": lambda rid: self.cube.set_shadow(bool(p.args["enabled"]), request_id=rid),
            "weights": lambda rid: self.cube.set_weights(float(p.args["standby"]), request_id=rid),
            "flip": lambda rid: self.cube.flip(request_id=rid),
            "quarantine": lambda rid: self.cube.quarantine(rec.bundle_id, reason="resumed", request_id=rid),
        }
        kinds: dict[str, DecisionKind] = {"load": "load", "weights": "weights", "flip": "flip",
                                          "quarantine": "quarantine",
                                          "shadow": "shadow_on" if p.args.get("enabled") else "shadow_off"}
        res = self._send(kinds[p.op], fns[p.op], p.request_id, p.action_id, f"resume {p.op} after restart", None)
        if res is None:
            self._snap_back(f"resume of {p.op} failed", None)
            self._end("failed", f"resume of {p.op} after restart failed: {rec.decisions[-1].detail}")
            return
        now = self.clock.time()
        if p.op == "shadow":
            rec.shadow_on = bool(p.args["enabled"])
            if p.args.get("enter") == "shadow" and rec.phase == "loading":
                rec.phase, rec.step, rec.step_start = "shadow", None, now
        elif p.op == "weights" and "step" in p.args:
            i = int(p.args["step"])
            rec.phase, rec.step, rec.step_start = ("soak" if rec.steps[i] >= 100 else "step"), i, now
        elif p.op == "flip":
            self._promoted(res.state)
        elif p.op == "quarantine":
            rec.quarantined = True
        self._save()

    # ------------------------------------------------------------------ records

    def _note(self, kind: DecisionKind, target: str, reason: str, result: Literal["done", "failed", "refused", "noted"],
              detail: str, evidence: StepVerdict | None, rid: str | None = None, ms: float | None = None, *,
              corrective: bool | None = None) -> None:
        rec = self._rec
        assert rec is not None
        if corrective is None:
            corrective = kind == "quarantine"
        rec.decisions.append(Decision(ts=self.clock.time(), kind=kind, target=target, reason=reason,
                                      request_id=rid, result=result, detail=detail, duration_ms=ms,
                                      corrective=corrective, evidence=evidence))
        del rec.decisions[:-MAX_DECISIONS]

    def _save(self) -> None:
        rec = self._rec
        assert rec is not None
        rec.rev += 1
        rec.updated_at = self.clock.time()
        self.store.save(rec)
        self._published = rec.model_copy(deep=True)


def _evidence(v: StepVerdict | None) -> dict[str, Any]:
    return {} if v is None else {"verdict": v.model_dump(mode="json")}
