"""Bodies of the steady-state graph's nodes. The topology is in samantha/loop/graph.py.

Each node takes the cycle state and returns a partial update; the state holds plain
JSON-able data only (it is checkpointed). Collaborators (store, Cube client, gate engine,
playbook runner, ledger, incidents, triager, audit) live in `SreDeps`.

The fast path (evaluate -> decide -> act) never waits on triage or on the audit log of
earlier cycles, and makes no LLM call.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from samantha.core.clock import Clock
from samantha.core.config import SamanthaConfig
from samantha.core.crashpoint import crashpoint
from samantha.core.domain import RolloutMark
from samantha.cube.protocol import CubeError, CubeRuntime, CubeState
from samantha.gates.engine import GateEngine
from samantha.gates.spec import judges_canary
from samantha.gates.verdict import Verdict
from samantha.kernel.policy import (
    ActionRecord,
    CubeSnapshot,
    ProposedAction,
    Scope,
    decide,
    scope_for_playbook,
)
from samantha.kernel.policy import SlotState as PolicySlot
from samantha.kernel.view import kernel_snapshot
from samantha.loop import effects
from samantha.loop.incidents import IncidentBook
from samantha.loop.known_good import KnownGood
from samantha.loop.ledger import ActionLedger
from samantha.loop.state import CycleState
from samantha.loop.triage import Triager
from samantha.playbooks import Firing, Playbook, PlaybookRunner, RunContext
from samantha.reporting.incident_summary import summarize
from samantha.telemetry.store import TelemetryStore

log = logging.getLogger(__name__)
HOLD_S = 600.0  # a hold_rollout without its own max_hold_s
REFUSAL_REPEAT_S = 60.0  # the same refusal is recorded again at most this often
# gate kinds that read requests by slot role: across a flip their windows mix both slots' rows
ROLE_ROW_KINDS = ("sequential", "compare")


class AuditSink(Protocol):
    def append(self, kind: str, payload: dict[str, Any]) -> Any: ...


@dataclass
class SreDeps:
    config: SamanthaConfig
    clock: Clock
    store: TelemetryStore
    cube: CubeRuntime
    engine: GateEngine
    runner: PlaybookRunner
    ledger: ActionLedger
    incidents: IncidentBook
    triager: Triager
    audit: AuditSink
    alert: Callable[[dict[str, Any]], None]
    resolve_alert: Callable[[str], None]
    playbooks: dict[str, Playbook] = field(default_factory=dict)
    rollout: RolloutHooks | None = None  # the progressive-rollout controller, when the daemon runs one
    known_good: KnownGood | None = None  # the Cube's one known-good set; None: one on `store`


class RolloutHooks(Protocol):
    def mark(self) -> RolloutMark | None: ...

    def abort(self, reason: str) -> Any: ...

    def hold(self, reason: str, hold_s: float) -> bool: ...


def timed(name: str) -> Callable[[Callable[..., dict[str, Any]]], Callable[..., dict[str, Any]]]:
    """Crash hook at entry, and the node's own time added to the state's `timings` (ms)."""
    def wrap(fn: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
        @functools.wraps(fn)
        def node(self: SreNodes, state: CycleState) -> dict[str, Any]:
            crashpoint(f"node.{name}")
            t0 = time.perf_counter()
            out = fn(self, state)
            out["timings"] = {**state.get("timings", {}), name: round((time.perf_counter() - t0) * 1000, 3)}
            return out
        return node
    return wrap


def _scope(pb: Playbook) -> Scope:
    """The kernel scope a playbook acts in (the kernel's `scope_for_playbook` on its `when.scope`)."""
    return scope_for_playbook(pb.when.scope.slot, pb.when.scope.rollout_step is not None)


class SreNodes:
    def __init__(self, deps: SreDeps) -> None:
        self.d = deps
        self.cfg = deps.config.sre
        self.known_good = deps.known_good if deps.known_good is not None else KnownGood(deps.store, deps.clock)
        self._canary: tuple[str | None, float | None] = (None, None)
        self._refusals: dict[tuple[Any, ...], float] = {}
        self._active: tuple[str | None, float] = (None, 0.0)  # the active slot, and when it last changed
        # with no canary on the Cube, gates that judge one have nothing to judge: not evaluated (most of the CPU)
        self._steady_gates = [g for g in deps.runner.gates if not judges_canary(g)]
        # what the last full cycle left settled: (ledger version, active bundle, when); None = something open
        self._settled: tuple[int, str | None, float] | None = None
        # the act node and an outside requester (a Recall, on the uplink's thread) never call the Cube at once
        self.acting = threading.RLock()

    def adopt(self, runner: PlaybookRunner) -> None:
        """Run another playbook set from the next cycle (called between cycles, in the loop's thread)."""
        self.d.runner = runner
        self.d.playbooks = {p.name: p for p in runner.playbooks}
        self._steady_gates = [g for g in runner.gates if not judges_canary(g)]
        self._settled = None

    # ------------------------------------------------------------------ observe
    @timed("observe")
    def observe(self, state: CycleState) -> dict[str, Any]:
        now = self.d.clock.time()
        try:
            cube = self.d.cube.state()
        except CubeError as e:
            return {"now": now, "cube": None, "cube_error": e.reason, "canary": None}
        if self._active[0] is not None and cube.active != self._active[0]:
            self._active = (cube.active, now)  # a flip: older "active" rows describe the other slot
        elif self._active[0] is None:
            self._active = (cube.active, 0.0)
        sb = cube.slot("standby")
        canary_id = sb.bundle_id if cube.standby_takes_traffic else None
        if canary_id != self._canary[0]:
            self._canary = (canary_id, now if canary_id else None)
        canary = {"bundle_id": canary_id, "name": sb.bundle_name, "start": self._canary[1]} if canary_id else None
        return {"now": now, "cube": cube.model_dump(mode="json"), "cube_error": None, "canary": canary}

    # ----------------------------------------------------------------- evaluate
    @timed("evaluate")
    def evaluate(self, state: CycleState) -> dict[str, Any]:
        canary = state.get("canary") or {}
        gates = self.d.runner.gates if canary else self._steady_gates
        active = next((s for s in (state.get("cube") or {}).get("slots", []) if s["role"] == "active"), None)
        # bundle-aware: after a flip, gates over the active role see only the new active bundle's requests
        verdicts = self.d.engine.evaluate(gates, state["now"], rollout_start=canary.get("start"),
                                          canary_bundle=canary.get("bundle_id"),
                                          active_bundle=active["bundle_id"] if active else None,
                                          active_since=self._active[1] or None)
        vs = [v.model_dump(mode="json") for v in verdicts]
        return {"verdicts": vs, "failing": [v for v in vs if v["status"] == "fail"]}

    def may_be_quiet(self, now: float | None = None) -> bool:
        """The last full cycle settled and is recent enough that this cycle could skip triage and decide."""
        st = self._settled
        return st is not None and (self.d.clock.time() if now is None else now) - st[2] < self.cfg.full_cycle_every_s

    def quiet(self, state: CycleState) -> bool:
        """Nothing to decide: no playbook would start acting, no canary, the last full cycle left nothing open.

        The playbook runner's streaks are already reset (the last full cycle saw an idle set), no
        action awaits verification (the ledger has not been written since), and the active bundle
        is the one `record` last judged, so triage, decide and record would change nothing.
        """
        st, cube = self._settled, state.get("cube")
        if st is None or cube is None or state.get("canary") or not self.may_be_quiet(state["now"]):
            return False
        active = next(s for s in cube["slots"] if s["role"] == "active")
        ctx = RunContext(now=state["now"], active_bundle=active["bundle_name"])
        return (st[0] == self.d.ledger.version and st[1] == active["bundle_id"]
                and self.d.runner.idle({v["gate"]: v["status"] for v in state.get("verdicts", [])}, ctx))

    # ------------------------------------------------------------------- triage
    @timed("triage")
    def triage(self, state: CycleState) -> dict[str, Any]:
        """Groups failing verdicts into open incidents and queues advisory triage. Never waits for it."""
        self.d.incidents.absorb_failing(state.get("failing", []), self._current_keys(state.get("cube")))
        queued = self.d.triager.submit_changed(self.d.incidents.open_incidents())
        return {"triage_queued": queued}

    # ------------------------------------------------------------------- decide
    @timed("decide")
    def decide(self, state: CycleState) -> dict[str, Any]:
        now = state["now"]
        cube = CubeState.model_validate(state["cube"]) if state.get("cube") else None
        canary = state.get("canary") or {}
        ctx = RunContext(now=now, active_bundle=cube.slot("active").bundle_name if cube else None,
                         canary_bundle=canary.get("name") or canary.get("bundle_id"))
        verdicts = [Verdict.model_validate(v) for v in state.get("verdicts", [])]
        firings = self.d.runner.step(verdicts, ctx)
        ledger_version = self.d.ledger.version  # before the read: a write racing it unsettles the cycle
        in_flight = self.d.ledger.with_status(["intent", "done"])
        busy = {r["incident_id"] for r in in_flight if r["incident_id"]}
        history = self.d.ledger.history(now - self.d.config.policy.rate_window_s) if firings else []
        snap = self.kernel_view(cube) if cube else None
        decisions: list[dict[str, Any]] = []
        refusals: list[dict[str, Any]] = []
        for f in firings:
            pb = self.d.playbooks[f.playbook]
            key = self._incident_key(pb, cube)
            evidence = [v.model_dump(mode="json") for v in f.evidence]
            if _scope(pb) != "canary" and any(v.window[0] < self._active[1] for v in f.evidence
                                              if _scope(pb) == "active" or v.kind in ROLE_ROW_KINDS):
                # it judges the previous active bundle (or role rows that mix both): no incident opens on the
                # one serving now
                log.debug("%s: evidence predates the last flip; not an incident of the new active", pb.name)
                continue
            severity = next((a.severity for a in f.actions if a.action == "alert"), "warning")
            inc = self.d.incidents.record_firing(key, f"{pb.name}: {pb.description or key}"[:200], severity,
                                                 pb.name, evidence)
            if f.suppressed:
                self._refuse(refusals, inc, now, pb.name, "-", ["playbook-limits"], [f.suppressed])
                continue
            if inc in busy:
                self._refuse(refusals, inc, now, pb.name, "-", ["action-in-flight"],
                             ["an earlier action for this incident is not verified yet"])
                continue
            firing = f"{pb.name}:{uuid.uuid4().hex[:12]}"  # its actions pass the cooldown together
            for a in f.actions:
                proposed, why = self._propose(a, f, pb, cube, firing)
                if proposed is None:
                    self._refuse(refusals, inc, now, pb.name, a.action, ["no-target"], [why])
                    continue
                if snap is None and proposed.kind != "alert":
                    self._refuse(refusals, inc, now, pb.name, a.action, ["cube-unreachable"],
                                 [f"Cube state unknown: {state.get('cube_error')}"])
                    continue
                verdict = decide(proposed, snap or _EMPTY_SNAPSHOT, history, now, self.d.config.policy)
                if not verdict.allowed:
                    self._refuse(refusals, inc, now, pb.name, a.action, verdict.violated, verdict.reasons)
                    continue
                history = [*history, ActionRecord.of(proposed, now)]  # the next action in this cycle counts it
                decisions.append({
                    "id": f"act-{uuid.uuid4().hex[:24]}", "kind": proposed.kind, "target": proposed.target,
                    "reason": proposed.reason, "requested_by": proposed.requested_by, "playbook": pb.name,
                    "playbook_version": pb.version, "incident_id": inc, "proposed": proposed.model_dump(mode="json"),
                    "evidence": evidence, "before": effects.snapshot(cube) if cube else {}, "created_ts": now,
                    "trigger": f.trigger, "policy": verdict.explain(), "hold_s": getattr(a, "max_hold_s", None)})
        pending = {"intent": sum(r["status"] == "intent" and r["requested_by"] == "playbook" for r in in_flight),
                   "done": sum(r["status"] == "done" and r["kind"] in effects.CUBE_KINDS for r in in_flight)}
        settled = not (in_flight or decisions or firings or self.d.incidents.open_incidents() or canary
                       or cube is None) and self.d.runner.idle({v.gate: v.status for v in verdicts}, ctx)
        self._settled = (ledger_version, cube.slot("active").bundle_id, now) if settled and cube else None
        return {"firings": [_firing_summary(f) for f in firings], "decisions": decisions, "refusals": refusals,
                "pending": pending}

    def kernel_view(self, cube: CubeState) -> CubeSnapshot:
        """The kernel's snapshot this loop judges its playbooks' actions on (samantha/kernel/view.py)."""
        mark = self.d.rollout.mark() if self.d.rollout is not None else None
        return kernel_snapshot(cube, mark, self.known_good.snapshot())

    @staticmethod
    def _current_keys(cube: dict[str, Any] | None) -> set[str] | None:
        """The incident keys that describe what the Cube serves now (None: Cube state unknown)."""
        if not cube:
            return None
        role = {s["role"]: (s["bundle_id"] or "empty")[:16] for s in cube["slots"]}
        return {"host", f"active:{role.get('active')}", f"canary:{role.get('standby')}",
                f"standby:{role.get('standby')}"}

    def _incident_key(self, pb: Playbook, cube: CubeState | None) -> str:
        scope = _scope(pb)
        if scope == "host" or cube is None:
            return scope
        role = "active" if scope == "active" else "standby"
        return f"{scope}:{(cube.slot(role).bundle_id or 'empty')[:16]}"

    def _propose(self, a: Any, f: Firing, pb: Playbook, cube: CubeState | None,
                 firing: str) -> tuple[ProposedAction | None, str]:
        kind = a.action
        gates = ", ".join(sorted({v.gate for v in f.evidence}))[:300]
        # the failing gates are always named: "which gate fired" is the first question after an action
        reason = (f"{a.reason} (gates: {gates})" if a.reason else f"playbook {pb.name} v{pb.version}: {f.trigger} on {gates}")[:2000]
        fields: dict[str, Any] = {}
        if kind in ("flip", "abort_rollout", "hold_rollout"):
            fields["target_slot"] = "standby"
            fields["target_bundle"] = cube.slot("standby").bundle_id if cube else None
        elif kind == "quarantine":
            fields["target_slot"] = a.target
            fields["target_bundle"] = cube.slot(a.target).bundle_id if cube else None
            if fields["target_bundle"] is None:
                return None, f"the {a.target} slot holds no bundle to quarantine"
        elif kind == "alert":
            fields["severity"] = a.severity
        try:
            return ProposedAction(kind=kind, scope=_scope(pb), requested_by="playbook", playbook=pb.name,
                                  reason=reason, cooldown_s=pb.limits.cooldown, firing=firing,
                                  max_actions_per_hour=pb.limits.max_actions_per_hour, **fields), ""
        except ValueError as e:
            return None, str(e)[:300]

    def _refuse(self, out: list[dict[str, Any]], incident: str, now: float, playbook: str, kind: str,
                violated: list[str], reasons: list[str]) -> None:
        sig = (incident, playbook, kind, tuple(violated))
        if now - self._refusals.get(sig, -1e18) < REFUSAL_REPEAT_S:
            return
        self._refusals[sig] = now
        r = {"ts": now, "incident_id": incident, "playbook": playbook, "kind": kind, "violated": violated,
             "reasons": reasons}
        self.d.incidents.add_refusal(incident, r)
        out.append(r)

    # ---------------------------------------------------------------------- act
    @timed("act")
    def act(self, state: CycleState) -> dict[str, Any]:
        with self.acting:
            acted = [self._execute(d) for d in state.get("decisions", [])]
            mine = {d["id"] for d in state.get("decisions", [])}
            for row in self.d.ledger.with_status(["intent"]):  # left by a crash or an unreachable Cube
                if row["id"] not in mine and row["requested_by"] == "playbook":  # the rollout controller owns its own
                    acted.append(self._complete(row, reconcile=True))
            return {"acted": acted}

    def act_now(self, proposed: ProposedAction, action_id: str, cube: CubeState,
                evidence: list[dict[str, Any]]) -> dict[str, Any]:
        """An action that does not come from a playbook (a Recall from the root): the same kernel check, on
        `cube` (fresh), then the same write-ahead intent and Cube call as the loop's own. `action_id` is
        deterministic for its requester, so asking again after a crash completes that row, never a second.
        The caller holds `acting` from reading `cube` to here."""
        now = self.d.clock.time()
        if self.d.ledger.get(action_id) is None:
            history = self.d.ledger.history(now - self.d.config.policy.rate_window_s)
            verdict = decide(proposed, self.kernel_view(cube), history, now, self.d.config.policy)
            if not verdict.allowed:
                return {"id": action_id, "kind": proposed.kind, "status": "refused", "violated": verdict.violated,
                        "reasons": verdict.reasons}
            policy = verdict.explain()
        else:
            policy = "resumed"
        return self._execute({
            "id": action_id, "kind": proposed.kind, "target": proposed.target, "reason": proposed.reason,
            "requested_by": proposed.requested_by, "playbook": None, "playbook_version": None, "incident_id": None,
            "proposed": proposed.model_dump(mode="json"), "evidence": evidence, "before": effects.snapshot(cube),
            "created_ts": now, "trigger": "recall", "policy": policy, "hold_s": None})

    def _execute(self, d: dict[str, Any]) -> dict[str, Any]:
        """Write the intent (once), then complete it. Safe to run again for the same decision."""
        row = self.d.ledger.get(d["id"])
        if row is None:
            self.d.ledger.write_intent(d)
            if d.get("incident_id"):
                self.d.incidents.link_action(d["incident_id"], d["id"])
            crashpoint(f"act.after_intent.{d['kind']}")
            stale = self.d.clock.time() - d["created_ts"] > self.cfg.resume_max_age_s
            return self._complete({**d, "request_id": d["id"], "status": "intent"}, reconcile=stale)
        if row["status"] != "intent":
            return {"id": d["id"], "kind": d["kind"], "status": row["status"], "note": "already settled"}
        return self._complete(row, reconcile=True)

    def _complete(self, row: dict[str, Any], *, reconcile: bool) -> dict[str, Any]:
        """Apply an intent at the Cube, or settle it from the Cube's state when it may have been applied already."""
        aid, kind = row["id"], row["kind"]
        now = self.d.clock.time()
        age = now - row["created_ts"]

        def settle(status: str, **result: Any) -> dict[str, Any]:
            self.d.ledger.mark(aid, status, result)
            return {"id": aid, "kind": kind, "status": status, **result}

        if kind in effects.LOCAL_KINDS:
            if kind == "alert":
                self.d.alert(row)
                return settle("done", local=True)
            held = self.d.rollout.hold(row["reason"], float(row.get("hold_s") or HOLD_S)) if self.d.rollout else False
            return settle("done", local=True, held=held)
        if reconcile:
            try:
                current = self.d.cube.state()
            except CubeError as e:
                return {"id": aid, "kind": kind, "status": "intent", "note": f"Cube unreachable: {e.reason}"}
            if effects.applied_in(row, current):
                return settle("done", reconciled="the Cube already shows the effect; not applied again",
                              generation=current.generation)
            if age > self.cfg.resume_max_age_s:
                return settle("reverted", reason=f"withdrawn: never applied, and {age:.0f}s old "
                                                 f"(> resume_max_age_s {self.cfg.resume_max_age_s:g})")
        if kind == "abort_rollout" and self.d.rollout is not None:
            # a regression, not an operator abort: the controller snaps back AND quarantines per its policy;
            # the call below makes sure weights are back even if the controller had nothing in progress
            with contextlib.suppress(Exception):
                self.d.rollout.fail(f"playbook {row.get('playbook')}: {row['reason']}"[:1000])
        try:
            res = effects.call_cube(self.d.cube, row)
        except CubeError as e:
            if e.status == 0:  # unreachable: it may or may not have landed; retried with the same request id
                return {"id": aid, "kind": kind, "status": "intent", "note": f"Cube unreachable: {e.reason}"}
            return settle("failed", code=e.code, reason=e.reason, field=e.field)
        crashpoint(f"act.after_call.{kind}")
        return settle("done", cube=res)

    # ------------------------------------------------------------------- verify
    @timed("verify")
    def verify(self, state: CycleState) -> dict[str, Any]:
        pending = [r for r in self.d.ledger.with_status(["done"]) if r["kind"] in effects.CUBE_KINDS]
        if not pending:
            return {"verified": []}
        self.d.store.flush()
        try:
            cube = self.d.cube.state()
        except CubeError:
            return {"verified": []}
        now = self.d.clock.time()
        out = []
        for row in pending:
            ok, ev = effects.confirm(row, cube, self.d.store, now, self.cfg.verify_min_requests)
            result = {**(row.get("result") or {}), "verification": ev}
            if ok:
                self.d.ledger.mark(row["id"], "verified", result)
                out.append({"id": row["id"], "kind": row["kind"], "status": "verified", "evidence": ev,
                            "latency_s": round(now - row["created_ts"], 3)})
            elif now - (row.get("done_ts") or row["created_ts"]) > self.cfg.verify_timeout_s:
                result["reason"] = f"effect not seen in telemetry within {self.cfg.verify_timeout_s:g}s"
                self.d.ledger.mark(row["id"], "failed", result)
                out.append({"id": row["id"], "kind": row["kind"], "status": "failed", "evidence": ev})
                self.d.alert({**row, "kind": "alert", "reason": f"{row['kind']} not confirmed: {result['reason']}",
                              "proposed": {"severity": "critical"}})
        return {"verified": out}

    # ------------------------------------------------------------------- record
    @timed("record")
    def record(self, state: CycleState) -> dict[str, Any]:
        audit = self.d.audit
        for d in state.get("decisions", []):
            audit.append("decision", {k: d[k] for k in ("id", "kind", "target", "reason", "playbook",
                                                        "playbook_version", "incident_id", "evidence", "policy",
                                                        "trigger")})
        for r in state.get("refusals", []):
            audit.append("refusal", r)
        for a in state.get("acted", []):
            audit.append("action", a)
        for v in state.get("verified", []):
            audit.append("verification", v)
        # an action is settled once verified (or failed, withdrawn); local ones (alert, hold) once done
        unsettled = {r["id"] for r in self.d.ledger.with_status(["intent", "done"])
                     if r["status"] == "intent" or r["kind"] in effects.CUBE_KINDS}
        closed = self.d.incidents.close_quiet(self.cfg.incident_close_after_s, unsettled, self._summary_of)
        self._write_summaries()
        for c in closed:
            audit.append("incident_closed", {"id": c})
            self.d.resolve_alert(c)
        cube = state.get("cube")
        if cube:
            active = next(s for s in cube["slots"] if s["role"] == "active")
            key = f"active:{(active['bundle_id'] or 'empty')[:16]}"
            if active["bundle_id"] and active["healthy"] and not any(
                    i["key"] == key for i in self.d.incidents.open_incidents()):
                self.known_good.add(active["bundle_id"], source="loop",
                                    reason="active, healthy, no open incident at the end of a cycle")
        return {"closed": closed}


    def _summary_of(self, inc: dict[str, Any]) -> str:
        rows = self.d.ledger.list(incident=inc["id"], limit=50) if inc.get("actions") else []
        return summarize(inc, rows).text

    def _write_summaries(self) -> None:
        """The code-written summary of every open incident, from its evidence and actions (a closing one
        gets its last summary as it closes)."""
        for inc in self.d.incidents.open_incidents():
            self.d.incidents.set_summary(inc["id"], self._summary_of(inc))


_EMPTY_SNAPSHOT = CubeSnapshot(active=PolicySlot(), standby=PolicySlot())


def _firing_summary(f: Firing) -> dict[str, Any]:
    return {"playbook": f.playbook, "version": f.version, "trigger": f.trigger, "suppressed": f.suppressed,
            "actions": [a.action for a in f.actions], "gates": sorted({v.gate for v in f.evidence})}
