"""The progressive-rollout controller: an explicit state machine, persisted at every transition.

    idle -> loading -> [shadow] -> step 1% -> 5% -> 25% -> 50% -> soak (100%) -> flipping -> promoted
                 \\__________ any failing verdict: weights 0, shadow off, quarantine, alert __/ -> aborted

- `start` verifies the bundle (signature, files, expiry), refuses a quarantined one, and loads it
  into the standby slot (the Cube verifies again).
- `tick(now)` (the daemon calls it >= 4 times a second) runs the handler of the current phase: the
  judged phases ask the rollout policy's gates (`judge_step`) and move on when a phase passes, or
  snap back when one fails.
- Every Cube mutation is a row of one table, `OPS`: how to perform it, how to tell from the Cube's
  state that it already happened, and what the record does once it has. The forward path and the
  resume after a restart both go through it.
- A regression snaps the weights to the active slot first and records afterwards: taking traffic
  off a bad bundle is idempotent and only ever safe, so it waits for nothing. Every other Cube
  call goes through the safety kernel and is recorded write-ahead (intent, call, result), with a
  request id derived from the rollout id and a sequence number. A restart finds the unfinished
  call in the record: when the Cube's state shows it took effect it is completed as it stands,
  otherwise it is re-sent with the same id, so the Cube applies it at most once.
- Every decision carries the StepVerdict it rests on.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
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
from samantha.loop.known_good import KnownGood
from samantha.rollout.actions import ActionRecorder
from samantha.rollout.bundle_check import BundleInfo, BundleRejected
from samantha.rollout.escalation import AskProvider, hold_request
from samantha.rollout.record import (
    MAX_DECISIONS,
    Decision,
    DecisionKind,
    Pending,
    Phase,
    RolloutRecord,
    RolloutStatus,
    RolloutStore,
)

StepRef = int | Literal["shadow"]
Judge = Callable[[StepRef, float, float, float, str], StepVerdict]  # step, now, rollout_start, step_start, bundle
AlertSink = Callable[[str, str, dict[str, Any]], None]  # severity, summary, evidence
AuditSink = Callable[[str, dict[str, Any]], None]  # kind, payload: the Cube's signed decision log
OpName = Literal["load", "shadow", "weights", "flip", "quarantine"]  # = Pending.op, persisted
Args = dict[str, Any]  # an op's arguments, persisted in Pending.args


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


# ---------------------------------------------------------------------- the operations table

Perform = Callable[[CubeRuntime, RolloutRecord, Args, str, str], MutationResult]  # cube, rec, args, reason, rid
AppliedIn = Callable[[CubeState, RolloutRecord, Args], bool]
Then = Callable[["RolloutController", RolloutRecord, Args, CubeState], None]


@dataclass(frozen=True)
class Op:
    """One Cube mutation, for the forward path and for the resume after a restart alike."""

    name: OpName
    perform: Perform  # the call at the Cube (idempotent by request id)
    applied_in: AppliedIn  # the Cube's state shows it took effect: a resume completes it without re-sending
    then: Then  # the record's transition once it took effect (the caller saves)
    kernel_kind: str | None  # what the safety kernel judges before the call; None: no check
    target_slot: str | None = None
    quiet_refusal: bool = False  # a refusal retried every tick (the flip's rate limit) is noted once

    def decision(self, args: Args) -> DecisionKind:
        if self.name == "shadow":
            return "shadow_on" if args.get("enabled") else "shadow_off"
        return self.name

    @property
    def ledger_kind(self) -> str:
        return self.kernel_kind or self.name


def _enter(ctl: RolloutController, rec: RolloutRecord, phase: Phase, step: int | None) -> None:
    rec.phase, rec.step, rec.step_start = phase, step, ctl.clock.time()


def _in_standby(state: CubeState, rec: RolloutRecord, args: Args) -> bool:
    sb = state.slot("standby")
    return sb.bundle_id == rec.bundle_id and sb.loaded and sb.verified


def _shadow_then(ctl: RolloutController, rec: RolloutRecord, args: Args, state: CubeState) -> None:
    rec.shadow_on = bool(args["enabled"])
    if args.get("enter") == "shadow" and rec.phase == "loading":
        _enter(ctl, rec, "shadow", None)


def _weights_then(ctl: RolloutController, rec: RolloutRecord, args: Args, state: CubeState) -> None:
    if "step" in args:  # a step's weights (a snap back's have none)
        i = int(args["step"])
        _enter(ctl, rec, "soak" if rec.steps[i] >= 100 else "step", i)


def _quarantine_then(ctl: RolloutController, rec: RolloutRecord, args: Args, state: CubeState) -> None:
    rec.quarantined = True


OPS: dict[OpName, Op] = {op.name: op for op in (
    Op("load", kernel_kind=None,
       perform=lambda cube, rec, a, why, rid: cube.load(a["bundle"], request_id=rid),
       applied_in=_in_standby,
       then=lambda ctl, rec, a, st: None),  # loading's handler enters the first phase next
    Op("shadow", kernel_kind="advance_rollout",
       perform=lambda cube, rec, a, why, rid: cube.set_shadow(bool(a["enabled"]), request_id=rid),
       applied_in=lambda st, rec, a: st.shadow == bool(a["enabled"]),
       then=_shadow_then),
    Op("weights", kernel_kind="advance_rollout",
       perform=lambda cube, rec, a, why, rid: cube.set_weights(float(a["standby"]), request_id=rid),
       applied_in=lambda st, rec, a: st.weights.standby == float(a["standby"]),
       then=_weights_then),
    Op("flip", kernel_kind="flip", target_slot="standby", quiet_refusal=True,
       perform=lambda cube, rec, a, why, rid: cube.flip(request_id=rid),
       applied_in=lambda st, rec, a: st.slot("active").bundle_id == rec.bundle_id,
       then=lambda ctl, rec, a, st: ctl._promoted(rec, st)),
    Op("quarantine", kernel_kind="quarantine", target_slot="standby",
       perform=lambda cube, rec, a, why, rid: cube.quarantine(rec.bundle_id, reason=why[:1000], request_id=rid),
       applied_in=lambda st, rec, a: st.is_quarantined(rec.bundle_id),
       then=_quarantine_then),
)}


@dataclass(frozen=True)
class CubeCall:
    """A request for one operation: what, with which arguments, why, on what evidence."""

    op: Op
    args: Args = field(default_factory=dict)
    reason: str = ""
    evidence: StepVerdict | None = None


@dataclass(frozen=True)
class Outcome:
    status: Literal["done", "refused", "failed"]
    detail: str = ""  # the decision's detail: why it was refused or how it failed

    @property
    def ok(self) -> bool:
        return self.status == "done"


DONE = Outcome("done")


# ---------------------------------------------------------------------- the controller

class RolloutController:
    def __init__(self, cube: CubeRuntime, judge: Judge, policy: RolloutPolicy, clock: Clock = REAL_CLOCK, *,
                 verify: Callable[[str], BundleInfo], store: RolloutStore, actions: ActionRecorder,
                 kernel: PolicyConfig | None = None, alert: AlertSink | None = None,
                 max_step_s: float = 1800.0, known_good: KnownGood | None = None,
                 ask: AskProvider = lambda: None, audit: AuditSink | None = None) -> None:
        self.cube, self.judge, self.policy, self.clock = cube, judge, policy, clock
        self.audit = audit  # every bundle admitted for a load, or refused, is on the decision log
        self.ask = ask  # the approval queue a grey zone asks (known once chaos is built; None: none here)
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
        self._phases: dict[Phase, Callable[[RolloutRecord, float], None]] = {
            "loading": self._on_loading, "shadow": self._on_judged, "step": self._on_judged,
            "soak": self._on_judged, "flipping": self._on_flipping}

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
            prev = self._rec
            if prev is not None and prev.request_id == request_id:
                if prev.bundle_ref != bundle:
                    raise RolloutRefused(409, "request_id_reused", f"request id {request_id} started a rollout "
                                         f"of {prev.bundle_ref!r}, not {bundle!r}", "request_id")
                return self.status()  # the same start again: idempotent
            if prev is not None and prev.active:
                raise RolloutRefused(409, "rollout_in_progress", f"rollout {prev.id} of {prev.bundle_label} is "
                                     f"{prev.phase}; abort it first")
            info, state = self._admit_audited(bundle)
            if self._next is not None:
                (self.policy, self.judge), self._next = self._next, None
            now = self.clock.time()
            rec = self._rec = RolloutRecord(
                id=f"ro{int(now)}{uuid.uuid4().hex[:6]}", request_id=request_id, bundle_ref=bundle,
                bundle_path=info.path, bundle_id=info.bundle_id, bundle_label=info.label,
                expires_at=info.expires_at, policy_name=self.policy.name, policy_version=self.policy.version,
                steps=[s.weight for s in self.policy.steps], phase="loading", started_at=now, updated_at=now,
                prior_active_bundle=state.slot("active").bundle_id)
            self._last_verdict = None
            self._save(rec)
            out = self._call(rec, CubeCall(OPS["load"], {"bundle": info.path, "attestations": info.attestations},
                                           f"rollout {rec.id}: load {info.label} into standby"))
            if not out.ok:
                self._end(rec, "failed", out.detail)
            else:
                self._enter_first_phase(rec)
            return self.status()

    def _admit_audited(self, bundle: str) -> tuple[BundleInfo, CubeState]:
        """`_admit`, on the decision log: a load cites the SBOM/attestation digests it relied on; a refusal
        names the kernel rule (and is alerted, unless the bundle simply was not found). The daemon's intake
        reports its own refusals (`reported`); the rest (not found, expiring, quarantined) are recorded here."""
        try:
            info, state = self._admit(bundle)
        except BundleRejected as e:
            if e.reported:
                raise
            if self.audit is not None:
                self.audit("bundle_refused", {"bundle": bundle, "kind": e.kind, "rule": e.rule, "reason": e.reason[:1000]})
            if self.alert is not None and e.kind not in ("not_found", "ambiguous"):
                self.alert("warning", f"bundle {bundle} refused ({e.rule or e.kind}): {e.reason}", {"bundle": bundle})
            raise
        if self.audit is not None:
            self.audit("bundle_admitted", {"bundle_id": info.bundle_id, "label": info.label, "path": info.path,
                                       "key_id": info.key_id, "attestations": info.attestations})
        return info, state

    def _admit(self, bundle: str) -> tuple[BundleInfo, CubeState]:
        """The checks before a rollout starts: nothing is recorded when one refuses."""
        info = self.verify(bundle)  # BundleRejected propagates: bad input
        left, need = info.expires_at - self.clock.time(), self._rollout_min_s()
        if left < need:
            raise BundleRejected("expired", f"{info.label} expires in {left:.0f} s, before "
                                 f"a rollout could finish ({need:.0f} s)")
        state = self._state()
        if state.is_quarantined(info.bundle_id):
            raise RolloutRefused(409, "quarantined", f"bundle {info.label} ({info.bundle_id[:16]}) is "
                                 "quarantined on this Cube", "bundle")
        if state.safe_mode:
            raise RolloutRefused(409, "safe_mode", "the Cube is in safe mode: no rollouts")
        if state.slot("active").bundle_id == info.bundle_id:
            raise RolloutRefused(409, "already_active", f"{info.label} is already the active bundle", "bundle")
        return info, state

    def abort(self, reason: str) -> RolloutStatus:
        """Operator abort: traffic back to the active slot, no quarantine (nothing was proven bad)."""
        if not reason.strip():
            raise RolloutRefused(422, "invalid", "an abort needs a reason", "reason")
        with self._lock:
            rec = self._rec
            if rec is None or not rec.active:
                raise RolloutRefused(409, "no_rollout", "no rollout is in progress")
            self._snap_back(rec, f"operator abort: {reason}", None)
            self._end(rec, "aborted", f"operator abort: {reason}")
            return self.status()

    def hold(self, reason: str, hold_s: float) -> bool:
        """A playbook's hold_rollout: judging goes on (a regression still aborts), but no step advances and
        no flip happens for `hold_s` seconds. Returns whether a rollout was in progress to hold."""
        with self._lock:
            rec = self._rec
            if rec is None or not rec.active:
                return False
            rec.held_until = max(rec.held_until or 0.0, self.clock.time() + hold_s)
            self._note(rec, "hold", reason, "done", f"held for {hold_s:g} s (until {rec.held_until:.0f})", None)
            self._save(rec)
            return True

    def fail(self, reason: str) -> bool:
        """A playbook saw the canary regress: the same as a failing step (snap back, then the policy's
        on-failure actions, quarantine included). Returns whether a rollout was in progress."""
        with self._lock:
            rec = self._rec
            if rec is None or not rec.active:
                return False
            self._fail(rec, reason, None, self.policy.on_failure)
            return True

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
                self._resume(rec, rec.pending)
            if rec.active and rec.snapped:
                self._interrupted_abort(rec)
            if rec.active:
                self._phases[rec.phase](rec, now)
            return self.status()
        finally:
            self._lock.release()

    # ------------------------------------------------------------------ phase handlers

    def _on_loading(self, rec: RolloutRecord, now: float) -> None:
        self._enter_first_phase(rec)

    def _on_judged(self, rec: RolloutRecord, now: float) -> None:
        """shadow, step, soak: judge the phase; pass moves on, fail snaps back, inconclusive waits (then stalls)."""
        assert rec.rollout_start is not None and rec.step_start is not None, "a judged phase has both anchors"
        ref: StepRef = "shadow" if rec.phase == "shadow" else int(rec.step or 0)
        v = self.judge(ref, now, rec.rollout_start, rec.step_start, rec.bundle_id)
        self._last_verdict = v
        if v.status != "inconclusive" and rec.approval_id is not None:
            self._withdraw(rec, f"the evidence decided: {v.status}")
        if v.status == "fail":
            self._regression(rec, v)
        elif v.status == "pass" and self._held(rec, now):
            return  # passed, but held: stay at this step (re-judged next tick)
        elif v.status == "pass":
            self._passed(rec, ref, v, now)
        elif rec.approval_id is not None:
            self._await_human(rec, ref, v, now)
        elif self.policy.grey_zone.enabled and self.ask() is not None:  # the grey zone replaces the stall rule
            if (now - rec.step_start > v.min_duration_s + self.policy.grey_zone.after_s
                    and not self._ask_human(rec, v, now)):
                self._stall(rec, v, now)  # the queue could not take the question
        elif now - rec.step_start > self.max_step_s + v.min_duration_s:
            self._stall(rec, v, now)

    def _stall(self, rec: RolloutRecord, v: StepVerdict, now: float) -> None:
        assert rec.step_start is not None
        rec.step_verdicts.append(v)
        self._snap_back(rec, f"stalled: {rec.phase} inconclusive for {now - rec.step_start:.0f} s ({v.reason})", v)
        self._end(rec, "aborted", f"stalled in {rec.phase}: {v.reason}")

    def _passed(self, rec: RolloutRecord, ref: StepRef, v: StepVerdict, now: float) -> None:
        rec.step_verdicts.append(v)
        nxt = 0 if ref == "shadow" else int(ref) + 1
        if nxt < len(rec.steps):
            self._enter_step(rec, nxt, v)
        else:
            rec.phase, rec.step_start = "flipping", now
            self._save(rec)
            self._flip(rec)

    # ------------------------------------------------------------------ the grey zone

    def _ask_human(self, rec: RolloutRecord, v: StepVerdict, now: float) -> bool:
        """Hold and ask: queue an approval item. False when there is no queue or it cannot take the item
        (the stall rule then applies, as without a grey zone)."""
        queue = self.ask()
        if queue is None:
            return False
        assert rec.step_start is not None
        waited = now - rec.step_start
        req = hold_request(rollout_id=rec.id, phase=rec.phase, step=rec.step, weight=v.weight,
                           bundle_id=rec.bundle_id, bundle_label=rec.bundle_label, reason=v.reason,
                           inconclusive_s=waited, verdicts=[x.model_dump(mode="json") for x in v.verdicts])
        try:
            aid = queue.ask(req)
        except Exception as e:  # a queue that cannot take it must not stop the rollout's judging
            self._note(rec, "ask", req["title"], "failed", f"{type(e).__name__}: {e}"[:500], v)
            self._save(rec)
            return False
        rec.approval_id = aid
        self._note(rec, "ask", req["title"], "done", f"held: waiting for an operator's decision on {aid} "
                   f"(approve: advance; deny: abort)", v)
        self._save(rec)
        self._alert(rec, "warning", f"rollout of {rec.bundle_label} held in a grey zone: {req['title']}; "
                    f"approval {aid} waits for an operator", v)
        return True

    def _await_human(self, rec: RolloutRecord, ref: StepRef, v: StepVerdict, now: float) -> None:
        """Still inconclusive and an operator was asked: approve passes the phase, deny or expiry aborts."""
        queue, aid = self.ask(), rec.approval_id
        assert aid is not None
        try:
            status = queue.decision(aid) if queue is not None else None
        except Exception:  # unreadable now: keep holding, ask again next tick
            return
        if status == "pending" or (status == "approved" and self._held(rec, now)):
            return  # a playbook's hold outlasts an approval: advance once it ends
        rec.approval_id = None
        if status == "approved":
            why = f"approved by an operator ({aid}) in a grey zone: {v.reason}"
            self._note(rec, "approved", why, "done", "", v)
            self._passed(rec, ref, v.model_copy(update={"status": "pass", "reason": why}), now)
            return
        kind: DecisionKind = "denied" if status == "denied" else "abort"
        why = (f"denied by an operator ({aid}) in a grey zone" if status == "denied"
               else f"grey zone: approval {aid} {status or 'gone'} without a decision")
        self._note(rec, kind, why, "done", v.reason, v)
        rec.step_verdicts.append(v)
        self._snap_back(rec, why, v)
        self._end(rec, "aborted", f"{why}: {v.reason}")

    def _withdraw(self, rec: RolloutRecord, why: str) -> None:
        aid, rec.approval_id = rec.approval_id, None
        queue = self.ask()
        if queue is not None and aid is not None:
            with contextlib.suppress(Exception):  # else the item stays pending and expires; nobody reads it
                queue.withdraw(aid, why)
        self._note(rec, "ask", f"approval {aid} withdrawn: {why}", "noted", "", None)

    def _on_flipping(self, rec: RolloutRecord, now: float) -> None:
        if self._held(rec, now):
            return
        if rec.step_start is not None and now - rec.step_start > self.max_step_s:
            waited = now - rec.step_start
            why = next((d.detail for d in reversed(rec.decisions) if d.kind == "flip"), "")
            self._snap_back(rec, f"flip not possible for {waited:.0f} s: {why}", None)
            self._end(rec, "aborted", f"flip refused for {waited:.0f} s: {why}")
        else:
            self._flip(rec)

    # ------------------------------------------------------------------ transitions

    def _rollout_min_s(self) -> float:
        p = self.policy
        return (p.shadow.min_duration if p.shadow.enabled else 0) + sum(s.min_duration for s in p.steps) + p.soak

    def _held(self, rec: RolloutRecord, now: float) -> bool:
        return rec.held_until is not None and now < rec.held_until

    def _enter_first_phase(self, rec: RolloutRecord) -> None:
        rec.rollout_start = self.clock.time()
        if not self.policy.shadow.enabled:
            return self._enter_step(rec, 0, None)
        out = self._call(rec, CubeCall(OPS["shadow"], {"enabled": True, "enter": "shadow"},
                                       "score the canary on mirrored traffic before any user sees it"))
        if not out.ok:
            self._fail_setup(rec, out.detail)

    def _enter_step(self, rec: RolloutRecord, i: int, evidence: StepVerdict | None) -> None:
        w = rec.steps[i]
        out = self._call(rec, CubeCall(OPS["weights"], {"standby": w, "step": i},
                                       f"step {i + 1}/{len(rec.steps)}: {w:g}% of traffic to {rec.bundle_label}",
                                       evidence))
        if not out.ok:
            self._fail_setup(rec, out.detail)

    def _flip(self, rec: RolloutRecord) -> None:
        if rec.shadow_on and not self._call(rec, CubeCall(OPS["shadow"], {"enabled": False},
                                                          "soak passed: stop mirroring before the flip")).ok:
            return  # retried next tick
        evidence = rec.step_verdicts[-1] if rec.step_verdicts else None
        out = self._call(rec, CubeCall(OPS["flip"], {}, f"every step and the soak passed: promote {rec.bundle_label}",
                                       evidence))
        if out.status == "failed":
            self._snap_back(rec, f"flip failed: {out.detail}", evidence)
            self._end(rec, "aborted", f"flip failed: {out.detail}")
        # refused by the kernel (e.g. flip rate limit): stay at 100% and retry next tick

    def _promoted(self, rec: RolloutRecord, state: CubeState) -> None:
        if state.slot("active").bundle_id != rec.bundle_id:
            self._end(rec, "failed", f"after the flip the active slot holds {state.slot('active').bundle_id}")
            return
        rec.last_known_good = state.slot("standby").bundle_id
        if rec.last_known_good:
            self.known_good.add(rec.last_known_good, source="rollout", reason=f"rollout {rec.id}: the bundle it replaced")
        self.known_good.add(rec.bundle_id, source="rollout", reason=f"rollout {rec.id}: promoted")
        self._note(rec, "promote", f"{rec.bundle_label} is active; last-known-good standby: "
                   f"{(rec.last_known_good or '-')[:16]}", "done", "",
                   rec.step_verdicts[-1] if rec.step_verdicts else None)
        self._end(rec, "promoted", "every step, the soak and the flip passed")

    def _regression(self, rec: RolloutRecord, v: StepVerdict) -> None:
        rec.step_verdicts.append(v)
        where = "shadow scoring" if v.step == "shadow" else f"step {int(v.step) + 1} ({v.weight:g}%)"
        self._fail(rec, f"regression at {where}: {v.reason}", v, v.actions or self.policy.on_failure)

    def _fail(self, rec: RolloutRecord, reason: str, v: StepVerdict | None, actions: Any) -> None:
        self._snap_back(rec, reason, v)
        rec.ended_at = self.clock.time()
        for action in actions:
            if isinstance(action, Quarantine):
                self._call(rec, CubeCall(OPS["quarantine"], {"bundle_id": rec.bundle_id}, reason, v))
            elif isinstance(action, Alert):
                self._alert(rec, action.severity, f"rollout of {rec.bundle_label} aborted: {reason}", v)
        self._end(rec, "aborted", reason)

    def _snap_back(self, rec: RolloutRecord, reason: str, v: StepVerdict | None) -> None:
        """Weights to 0 and shadow off at once; recorded after (see the module doc)."""
        if self._cube_state is not None:  # the kernel judges on the last state seen: no extra round trip
            ok, why = self._kernel(rec, "abort_rollout", reason, None, self._cube_state)
            if not ok:
                self._note(rec, "abort", reason, "refused", why, v)
        t0 = time.perf_counter()
        for op, args in ((OPS["weights"], {"standby": 0}), (OPS["shadow"], {"enabled": False})):
            if op.name == "shadow" and not rec.shadow_on:
                continue
            rid = self._rid(rec, op.name)
            try:
                res = op.perform(self.cube, rec, args, reason, rid)
                self._cube_state = res.state
                op.then(self, rec, args, res.state)
                ok, detail = True, f"{(time.perf_counter() - t0) * 1000:.1f} ms after the decision"
            except CubeError as e:
                ok, detail = False, e.reason
            aid = self.actions.intent(kind="abort_rollout", target=rec.bundle_id, reason=reason, request_id=rid,
                                      evidence=_evidence(v) | {"args": args})
            self.actions.finish(aid, "done" if ok else "failed", detail)
            self._note(rec, op.decision(args), reason, "done" if ok else "failed", detail, v, rid,
                       (time.perf_counter() - t0) * 1000, corrective=True)
        rec.step_start, rec.snapped = None, True
        self._save(rec)

    def _interrupted_abort(self, rec: RolloutRecord) -> None:
        """Traffic was snapped back, then a restart came before the rollout ended (e.g. mid-quarantine, whose
        call the resume completed): the snap back is the abort, so end it (judging it again cannot work)."""
        why = next((d.reason for d in reversed(rec.decisions) if d.kind == "weights" and d.corrective),
                   "snapped back")
        self._end(rec, "aborted", f"{why} (a restart interrupted the abort after the snap back)")

    def _alert(self, rec: RolloutRecord, severity: str, summary: str, v: StepVerdict | None) -> None:
        self._note(rec, "alert", summary, "done", severity, v, corrective=True)
        if self.alert is not None:
            self.alert(severity, summary, _evidence(v))

    def _fail_setup(self, rec: RolloutRecord, why: str) -> None:
        self._snap_back(rec, f"setup failed: {why}", None)
        self._end(rec, "failed", why)

    def _end(self, rec: RolloutRecord, phase: Literal["promoted", "aborted", "failed"], reason: str) -> None:
        if rec.approval_id is not None:
            self._withdraw(rec, f"the rollout {phase}")
        rec.phase, rec.reason = phase, reason
        rec.ended_at = rec.ended_at or self.clock.time()
        rec.step_start = None
        self._save(rec)

    # ------------------------------------------------------------------ Cube calls

    def _call(self, rec: RolloutRecord, call: CubeCall) -> Outcome:
        """Kernel check, intent (persisted), the call, the result and its transition (persisted)."""
        refused = self._check(rec, call)
        if refused is not None:
            return refused
        rid = self._rid(rec, call.op.name)
        aid = self.actions.intent(kind=call.op.ledger_kind, target=rec.bundle_id, reason=call.reason,
                                  request_id=rid, evidence=_evidence(call.evidence) | {"args": call.args})
        rec.pending = Pending(op=call.op.name, request_id=rid, args=call.args, ts=self.clock.time(), action_id=aid)
        self._save(rec)
        return self._send(rec, call, rec.pending)

    def _check(self, rec: RolloutRecord, call: CubeCall) -> Outcome | None:
        """The safety kernel's verdict on the call, on fresh Cube state: None when allowed."""
        op, kind = call.op, call.op.decision(call.args)
        if op.kernel_kind is None:
            return None
        try:
            state = self._state()
        except RolloutRefused as e:
            self._note(rec, kind, call.reason, "failed", e.reason, call.evidence)
            return Outcome("failed", e.reason)
        ok, why = self._kernel(rec, op.kernel_kind, call.reason, op.target_slot, state)
        if ok:
            return None
        last = rec.decisions[-1] if rec.decisions else None
        if not (op.quiet_refusal and last is not None and last.kind == kind and last.detail == why):
            self._note(rec, kind, call.reason, "refused", why, call.evidence)
            self._save(rec)
        return Outcome("refused", why)

    def _send(self, rec: RolloutRecord, call: CubeCall, p: Pending) -> Outcome:
        """The call at the Cube with the pending intent's request id."""
        t0 = time.perf_counter()
        try:
            res = call.op.perform(self.cube, rec, call.args, call.reason, p.request_id)
        except CubeError as e:
            if p.action_id:
                self.actions.finish(p.action_id, "failed", e.reason)
            rec.pending = None
            detail = f"{e.code}: {e.reason}"
            self._note(rec, call.op.decision(call.args), call.reason, "failed", detail, call.evidence, p.request_id,
                       (time.perf_counter() - t0) * 1000)
            self._save(rec)
            return Outcome("failed", detail)
        self._cube_state = res.state
        return self._took_effect(rec, call, p, res.state, (time.perf_counter() - t0) * 1000,
                                 None if res.applied else "already applied (same request id)")

    def _took_effect(self, rec: RolloutRecord, call: CubeCall, p: Pending, state: CubeState, ms: float,
                     earlier: str | None) -> Outcome:
        """Result and transition, persisted together. `earlier`: how we know it took effect before a restart."""
        if p.action_id:
            self.actions.finish(p.action_id, "done", earlier or "applied")
        rec.pending = None
        self._note(rec, call.op.decision(call.args), call.reason, "done",
                   "completed after restart" if earlier else "", call.evidence, p.request_id, ms)
        call.op.then(self, rec, call.args, state)
        self._save(rec)
        return DONE

    def _resume(self, rec: RolloutRecord, p: Pending) -> None:
        """After a restart: finish the call whose intent was recorded. Done already when the Cube's state
        shows it; otherwise re-sent with the same request id (the Cube applies it at most once)."""
        call = CubeCall(OPS[p.op], p.args, f"resume {p.op} after restart")
        t0 = time.perf_counter()
        try:
            state: CubeState | None = self._state()
        except RolloutRefused:
            state = None  # the re-send below finds out whether the Cube is back
        if state is not None and call.op.applied_in(state, rec, p.args):
            out = self._took_effect(rec, call, p, state, (time.perf_counter() - t0) * 1000,
                                    "already applied (seen in the Cube's state)")
        else:
            out = self._send(rec, call, p)
        if not out.ok:
            self._snap_back(rec, f"resume of {p.op} failed", None)
            self._end(rec, "failed", f"resume of {p.op} after restart failed: {out.detail}")

    def _rid(self, rec: RolloutRecord, op: str) -> str:
        rec.seq += 1
        return f"{rec.id}-{rec.seq}-{op}"

    def _state(self) -> CubeState:
        try:
            self._cube_state = self.cube.state()
        except CubeError as e:
            raise RolloutRefused(503, "cube_unreachable", f"cannot read the Cube's state: {e.reason}") from None
        return self._cube_state

    def _kernel(self, rec: RolloutRecord, kind: str, reason: str, target_slot: str | None,
                state: CubeState) -> tuple[bool, str]:
        action = ProposedAction(kind=kind, scope="rollout", requested_by="rollout", reason=reason[:2000],
                                target_slot=target_slot,
                                target_bundle=rec.bundle_id if kind in ("quarantine", "flip") else None)
        d = decide(action, self.kernel_view(state), self.actions.history(), self.clock.time(), self.kernel)
        return d.allowed, d.explain()

    # ------------------------------------------------------------------ records

    def _note(self, rec: RolloutRecord, kind: DecisionKind, reason: str,
              result: Literal["done", "failed", "refused", "noted"], detail: str, evidence: StepVerdict | None,
              rid: str | None = None, ms: float | None = None, *, corrective: bool | None = None) -> None:
        if corrective is None:
            corrective = kind == "quarantine"
        rec.decisions.append(Decision(ts=self.clock.time(), kind=kind, target=rec.bundle_id, reason=reason,
                                      request_id=rid, result=result, detail=detail, duration_ms=ms,
                                      corrective=corrective, evidence=evidence))
        del rec.decisions[:-MAX_DECISIONS]

    def _save(self, rec: RolloutRecord) -> None:
        rec.rev += 1
        rec.updated_at = self.clock.time()
        self.store.save(rec)
        self._published = rec.model_copy(deep=True)


def _evidence(v: StepVerdict | None) -> dict[str, Any]:
    return {} if v is None else {"verdict": v.model_dump(mode="json")}
