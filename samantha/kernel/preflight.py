"""Pre-flight: the blast-radius check every proposal passes before it may run. Pure.

`check(PreflightInput) -> PreflightResult` with verdict sanctioned | escalate | reject
and EVERY reason, not just the first. No I/O and no clock: the caller passes the
proposal, the gate verdicts, a psutil snapshot, the Cube's state and the history.

- reject: beyond policy whoever asks (not in the catalog, a protected target, the Cube
  not in steady state, no error budget, a concurrent experiment, outside the
  maintenance window, resources the host does not have, safe mode, a rollout running);
- escalate: allowed only with a signed operator approval (the active path beyond a
  small share, stopping or killing the active slot, no fallback, beyond headroom,
  longer than the unattended cap, a revert path not yet tested on this Cube);
- sanctioned: nothing of the above.
Approval is not a bypass: an approved proposal passes this check again at execution,
where only escalate reasons are waived.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from samantha.chaos.catalog import (
    PROFILES,
    PROTECTED_TARGETS,
    TARGETS,
    BlastRadius,
    FaultBase,
    FaultError,
    blast_radius,
    parse_fault,
)
from samantha.chaos.proposal import Proposal
from samantha.core.config import ChaosLimits, PolicyConfig
from samantha.kernel.policy import CubeSnapshot, ProposedAction, decide

Verdict = Literal["sanctioned", "escalate", "reject"]


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HostSnapshot(_M):
    """psutil numbers, taken by the caller."""

    cpu_count: int = Field(ge=1)
    cpu_used_ratio: float = Field(ge=0, le=1)
    mem_available_mb: float = Field(ge=0)
    disk_free_mb: float = Field(ge=0, description="free space on the filesystem of data_dir (the store's)")


class GateStatus(_M):
    name: str
    status: Literal["pass", "fail", "inconclusive"]
    reason: str = ""


class PreflightInput(_M):
    proposal: Proposal
    now: float = Field(description="wall time, epoch s")
    gates: list[GateStatus] = Field(description="every registered gate's verdict now")
    hypothesis_gates: list[str] = Field(description="gates the experiment's steady-state hypothesis asks")
    error_budget_remaining: float | None = Field(description="share of the error budget left; None: unknown")
    host: HostSnapshot
    cube: CubeSnapshot
    running_experiments: int = Field(0, ge=0)
    revert_tested: frozenset[str] = Field(default_factory=frozenset, description="kinds whose revert was verified")
    recent_drills: list[float] = Field(default_factory=list, description="start times of recent rollback drills")
    limits: ChaosLimits = ChaosLimits()
    policy: PolicyConfig = PolicyConfig()


class Reason(_M):
    code: str
    severity: Literal["reject", "escalate"]
    message: str


class PreflightResult(_M):
    verdict: Verdict
    reasons: list[Reason]
    blast: BlastRadius | None = None
    fault: dict | None = Field(None, description="the validated fault (catalog model dump)")

    @property
    def sanctioned(self) -> bool:
        return self.verdict == "sanctioned"

    def explain(self) -> str:
        return self.verdict + ("" if not self.reasons else ": " + "; ".join(f"[{r.code}] {r.message}"
                                                                              for r in self.reasons))


def in_window(now: float, windows: list[str]) -> bool:
    """Daily UTC windows 'HH:MM-HH:MM' (may wrap midnight). No windows: always."""
    if not windows:
        return True
    minute = int((now % 86400) // 60)
    for w in windows:
        a, b = w.split("-")
        start = int(a[:2]) * 60 + int(a[3:])
        end = int(b[:2]) * 60 + int(b[3:])
        if (start <= minute < end) if start <= end else (minute >= start or minute < end):
            return True
    return False


def check(inp: PreflightInput) -> PreflightResult:
    reasons: list[Reason] = []

    def reject(code: str, msg: str) -> None:
        reasons.append(Reason(code=code, severity="reject", message=msg))

    def escalate(code: str, msg: str) -> None:
        reasons.append(Reason(code=code, severity="escalate", message=msg))

    p, lim, cube, host = inp.proposal, inp.limits, inp.cube, inp.host
    fault: FaultBase | None = None
    blast: BlastRadius | None = None

    # --- is it a catalog entry, on a target it may touch? ------------------------------------
    target = p.target if isinstance(p.target, str) else None
    if target is None:
        reject("bad-target", f"target must be one of {', '.join(TARGETS)}")
    elif target in PROTECTED_TARGETS:
        reject("protected-target", f"{target} is {PROTECTED_TARGETS[target]}: never a fault target")
    elif target not in TARGETS:
        reject("bad-target", f"unknown target {target!r} (known: {', '.join(TARGETS)})")
    try:
        fault = parse_fault(p.kind, p.params)
    except FaultError as e:
        for fld, why in e.problems.items():
            reject("not-in-catalog", f"{fld}: {why}")
    if fault is not None and target in TARGETS:
        prof = PROFILES[fault.kind]  # type: ignore[attr-defined]
        if target not in prof.targets:
            reject("bad-target", f"{fault.kind} targets {', '.join(prof.targets)}, not {target}")
        else:
            blast = blast_radius(fault, target, 100.0 * cube.weights.get("standby", 0.0))

    # --- the safety kernel (safe mode, rollouts) ----------------------------------------------
    action = ProposedAction(kind="chaos", scope="chaos", requested_by="chaos",
                            reason=f"chaos experiment {p.label()}"[:2000] or "chaos experiment")
    if math.isfinite(inp.now):
        pol = decide(action, cube, [], inp.now, inp.policy)
        for rid, why in zip(pol.violated, pol.reasons, strict=True):
            reject(f"policy:{rid}", why)
    else:
        reject("bad-clock", "evaluation time is not finite")

    # --- steady state, error budget, concurrency, window --------------------------------------
    statuses = {g.name: g for g in inp.gates}
    for g in inp.gates:
        if g.status == "fail":
            reject("gate-failing", f"gate {g.name} is failing ({g.reason or 'no reason'}): not in steady state")
    if not any(statuses.get(n) is not None and statuses[n].status == "pass" for n in inp.hypothesis_gates):
        escalate("hypothesis-blind", "no gate of the steady-state hypothesis passes now: a breach could go unseen")
    b = inp.error_budget_remaining
    if b is None or not math.isfinite(b):
        escalate("error-budget-unknown", "the error budget left is unknown")
    elif b < lim.min_error_budget:
        reject("error-budget", f"error budget left {b:.0%} < {lim.min_error_budget:.0%}")
    if inp.running_experiments > 0:
        reject("concurrent", f"{inp.running_experiments} experiment(s) already running")
    if math.isfinite(inp.now) and not in_window(inp.now, lim.maintenance_windows):
        reject("maintenance-window", f"outside the maintenance windows {', '.join(lim.maintenance_windows)} (UTC)")

    if fault is None or blast is None:
        return PreflightResult(verdict=_verdict(reasons), reasons=reasons)

    kind = fault.kind  # type: ignore[attr-defined]
    # --- revert path -------------------------------------------------------------------------
    if not blast.reversible:
        reject("irreversible", f"{kind} has no revert path")
    elif kind not in inp.revert_tested:
        escalate("revert-untested", f"the revert of {kind} ({blast.revert}) has not been verified on this Cube yet")

    # --- duration and traffic share ----------------------------------------------------------
    if fault.duration_s > lim.max_duration_s:
        escalate("duration", f"{fault.duration_s:g} s > unattended cap {lim.max_duration_s:g} s")
    standby_ok = cube.serviceable("standby")
    if blast.role == "active":
        if blast.traffic_share > lim.active_max_share:
            escalate("active-share", f"touches {blast.traffic_share:.0%} of the active slot's only path "
                     f"(> {lim.active_max_share:.0%})")
        if kind in ("kill_slot", "sigstop"):
            escalate("active-slot-down", f"{kind} on the active slot stops the Cube's serving slot")
        if not standby_ok:
            escalate("no-fallback", "the standby is not serviceable: the active path has no fallback")
    if blast.role == "standby":
        if cube.standby.bundle is None or not cube.standby.loaded:
            reject("standby-empty", "the standby slot has no bundle: nothing to exercise")
        if blast.live_share > lim.active_max_share:
            escalate("live-share", f"the standby serves live traffic now: {blast.live_share:.0%} of all requests "
                     f"touched (> {lim.active_max_share:.0%})")
    if kind == "input_noise" and blast.traffic_share > lim.active_max_share:
        escalate("noise-share", f"noise on {blast.traffic_share:.0%} of all requests (> {lim.active_max_share:.0%})")
    if kind == "rollback_drill":
        if not standby_ok:
            reject("drill-standby", "the standby is not serviceable: a drill would flip live traffic onto it")
        recent = [t for t in inp.recent_drills if inp.now - t < 3600]
        if len(recent) >= lim.drills_per_hour:
            reject("drill-rate", f"{len(recent)} rollback drill(s) in the last hour (max {lim.drills_per_hour})")

    # --- host resources ----------------------------------------------------------------------
    cpu_free = host.cpu_count * (1.0 - host.cpu_used_ratio)
    if blast.cpu_cores > host.cpu_count:
        reject("cpu-capacity", f"needs {blast.cpu_cores:g} cores, the host has {host.cpu_count}")
    elif blast.cpu_cores > 0 and blast.cpu_cores > cpu_free - lim.cpu_reserve_cores:
        escalate("cpu-headroom", f"needs {blast.cpu_cores:g} cores, {cpu_free:.2f} free, "
                 f"{lim.cpu_reserve_cores:g} reserved")
    mem_need = blast.memory_mb + lim.runner_memory_mb
    if mem_need > host.mem_available_mb:
        reject("memory-capacity", f"needs {mem_need:.0f} MB, {host.mem_available_mb:.0f} MB available")
    elif mem_need > host.mem_available_mb - lim.memory_reserve_mb:
        escalate("memory-headroom", f"needs {mem_need:.0f} MB, {host.mem_available_mb:.0f} MB available, "
                 f"{lim.memory_reserve_mb:g} MB reserved")
    if blast.disk_mb > host.disk_free_mb - lim.disk_reserve_mb:
        reject("disk-headroom", f"needs {blast.disk_mb:g} MB on the store's disk, {host.disk_free_mb:.0f} MB free, "
               f"{lim.disk_reserve_mb:g} MB reserved for the store")

    return PreflightResult(verdict=_verdict(reasons), reasons=reasons, blast=blast,
                           fault=fault.model_dump(mode="json"))


def _verdict(reasons: list[Reason]) -> Verdict:
    if any(r.severity == "reject" for r in reasons):
        return "reject"
    return "escalate" if reasons else "sanctioned"


def may_run_approved(result: PreflightResult, approved_codes: set[str]) -> bool:
    """An approved proposal at execution time: no reject reason, and no escalation the operator did not approve
    (health may have changed since: a new concern goes back to a human)."""
    return result.verdict != "reject" and all(r.code in approved_codes for r in result.reasons
                                              if r.severity == "escalate")
