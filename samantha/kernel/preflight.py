"""Pre-flight: the blast-radius check every proposal passes before it may run. Pure.

`check(PreflightInput) -> PreflightResult` with verdict sanctioned | escalate | reject
and EVERY reason, not just the first. No I/O and no clock: the caller passes the
proposal, the fault the chaos registry resolved it to (`ResolvedFault`: the kind's
`BlastProfile` and the concrete `FaultDemand`, or why it is not in the catalog), the gate
verdicts, a psutil snapshot, the Cube's state and the history. The kernel knows no fault
kind by name: every rule reads the typed profile.

Each rule below is a small function with an id (`pf-...`); its docstring is its
explanation (`rule_catalog()`). A rule yields zero or more `Reason`s, each with a stable
`code` (the approval UI and operators' approvals name codes) and a severity:
- reject: beyond policy whoever asks (not in the catalog, a protected target, the Cube
  not in steady state, no error budget, a concurrent experiment, outside the
  maintenance window, resources the host does not have, safe mode, a rollout running);
- escalate: allowed only with a signed operator approval (the active path beyond a
  small share, stopping the active slot, no fallback, beyond headroom, longer than the
  unattended cap, a revert path not yet tested on this Cube);
- sanctioned: nothing of the above.
Approval is not a bypass: an approved proposal passes this check again at execution,
where only escalate reasons are waived.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from samantha.core.config import ChaosLimits, PolicyConfig
from samantha.core.proposal import Proposal
from samantha.kernel.policy import CubeSnapshot, ProposedAction, decide

Verdict = Literal["sanctioned", "escalate", "reject"]
Role = Literal["active", "standby", "both", "none"]

# Targets are roles on the Cube's dependency map, resolved to slot names only when an experiment is built,
# so a flip between planning and running cannot retarget a fault:
# - `active` / `standby`: the path router -> proxy -> slot of that role;
# - `router`: the router's input stage (input noise);
# - `host`: the machine's CPU, memory, disk;
# - `cube`: the Cube as a whole (rollback drill).
TARGETS: tuple[str, ...] = ("active", "standby", "router", "host", "cube")
# Named so a refusal can say what it protects; every other unknown target is rejected too.
PROTECTED_TARGETS: dict[str, str] = {
    "samantha-store": "Samantha's own DuckDB file",
    "samantha-api": "Samantha's local API",
    "cube-control": "the path to the Cube control API",
    "router-process": "the router process (it serves the Cube control API)",
    "proxy-process": "the fault proxy process (both data paths and every revert go through it)",
    "supervisor": "the Cube's process supervisor (it restarts crashed slots)",
}
# How a fault acts, as far as the rules care:
# - path: a share of a slot path's requests is degraded (proxy toxics);
# - process: the slot process itself is stopped or killed;
# - input: the router's input stage, a share of ALL requests;
# - flip: all live traffic is flipped onto the standby (and back);
# - host: the host's CPU, memory or disk.
Mechanism = Literal["path", "process", "input", "flip", "host"]


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BlastProfile(_M):
    """What a fault kind can touch, whatever its parameters: declared once per kind in the chaos registry."""

    kind: str
    summary: str = ""
    mechanism: Mechanism
    touches: tuple[str, ...] = Field(description="components on the dependency map")
    targets: tuple[str, ...] = Field(description="target roles the kind accepts")
    reversible: bool
    revert: str = Field(description="how it is reverted, in words")
    path_down: bool = Field(description="at full strength the faulted path serves nothing")


class FaultDemand(_M):
    """What one concrete fault (validated parameters) asks of the Cube and the host."""

    traffic_share: float = Field(ge=0, le=1, description="share of the target path's requests the fault touches")
    duration_s: float = Field(gt=0)
    cpu_cores: float = Field(0.0, ge=0)
    memory_mb: float = Field(0.0, ge=0)
    disk_mb: float = Field(0.0, ge=0)


class ResolvedFault(_M):
    """A proposal's fault as the chaos registry resolved it: profile + demand, or the problems that keep it out."""

    kind: str | None = Field(None, description="the kind resolved; None: the proposal names no catalog kind")
    profile: BlastProfile | None = None
    demand: FaultDemand | None = None
    fault: dict | None = Field(None, description="the validated fault (params model dump, kind included)")
    problems: dict[str, str] = Field(default_factory=dict, description="field -> why it is not a catalog entry")

    @property
    def ok(self) -> bool:
        return not self.problems and self.profile is not None and self.demand is not None


class BlastRadius(_M):
    """What a concrete fault would touch: the pre-flight reasons come from this, never from prose."""

    kind: str
    target: str
    touches: tuple[str, ...]
    role: Role
    traffic_share: float = Field(description="share of the touched path's requests affected")
    live_share: float = Field(description="share of ALL live traffic affected, given the current weights")
    duration_s: float
    cpu_cores: float
    memory_mb: float
    disk_mb: float
    reversible: bool
    revert: str
    path_down: bool = Field(description="the faulted path serves nothing while the fault is in")


def blast_radius(profile: BlastProfile, demand: FaultDemand, target: str,
                 standby_weight_pct: float = 0.0) -> BlastRadius:
    """A profile and a demand on a target role, given the standby's share of live traffic (percent)."""
    role: Role
    if target in ("active", "standby"):
        role = target  # type: ignore[assignment]
    elif target in ("router", "cube"):
        role = "both"
    else:
        role = "none"
    share = demand.traffic_share
    w = min(max(standby_weight_pct, 0.0), 100.0) / 100.0
    path_share = {"active": 1.0 - w, "standby": w, "both": 1.0, "none": 0.0}[role]
    return BlastRadius(kind=profile.kind, target=target, touches=profile.touches, role=role, traffic_share=share,
                       live_share=share * path_share, duration_s=demand.duration_s, cpu_cores=demand.cpu_cores,
                       memory_mb=demand.memory_mb, disk_mb=demand.disk_mb, reversible=profile.reversible,
                       revert=profile.revert, path_down=profile.path_down and share >= 1.0)


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
    fault: ResolvedFault = Field(description="the proposal's fault, resolved by the chaos fault-kind registry")
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
    rule: str = Field("", description="the pre-flight rule id that gave this reason")


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


# --- rules -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Ctx:
    inp: PreflightInput
    target: str | None  # the proposal's target when it is one of TARGETS
    blast: BlastRadius | None  # set when the fault resolved and may go on that target

    @property
    def lim(self) -> ChaosLimits:
        return self.inp.limits

    @property
    def kind(self) -> str:
        return self.blast.kind if self.blast is not None else str(self.inp.proposal.kind)


Finding = tuple[str, Literal["reject", "escalate"], str]  # (code, severity, message)


def _reject(code: str, msg: str) -> Finding:
    return (code, "reject", msg)


def _escalate(code: str, msg: str) -> Finding:
    return (code, "escalate", msg)


@dataclass(frozen=True)
class Rule:
    id: str
    doc: str
    check: Callable[[Ctx], list[Finding]]


RULES: list[Rule] = []


def rule(rule_id: str) -> Callable[[Callable[[Ctx], list[Finding]]], Callable[[Ctx], list[Finding]]]:
    def register(fn: Callable[[Ctx], list[Finding]]) -> Callable[[Ctx], list[Finding]]:
        if any(r.id == rule_id for r in RULES):
            raise ValueError(f"duplicate pre-flight rule id {rule_id!r}")
        RULES.append(Rule(rule_id, " ".join((fn.__doc__ or "").split()), fn))
        return fn
    return register


# --- is it a catalog entry, on a target it may touch? --------------------------------------------

@rule("pf-known-target")
def _known_target(c: Ctx) -> list[Finding]:
    """The target is a role on the Cube's dependency map (active, standby, router, host, cube). Samantha's own
    store and API, the control path, the router and proxy processes and the supervisor are protected and
    rejected by name; anything else is rejected as unknown."""
    t = c.inp.proposal.target
    if not isinstance(t, str):
        return [_reject("bad-target", f"target must be one of {', '.join(TARGETS)}")]
    if t in PROTECTED_TARGETS:
        return [_reject("protected-target", f"{t} is {PROTECTED_TARGETS[t]}: never a fault target")]
    if t not in TARGETS:
        return [_reject("bad-target", f"unknown target {t!r} (known: {', '.join(TARGETS)})")]
    return []


@rule("pf-catalog-entry")
def _catalog_entry(c: Ctx) -> list[Finding]:
    """The fault is a catalog entry with every parameter inside its kind's ranges; each bad field is named."""
    f, p = c.inp.fault, c.inp.proposal
    out = [_reject("not-in-catalog", f"{fld}: {why}") for fld, why in f.problems.items()]
    if not f.problems and not f.ok:
        out.append(_reject("not-in-catalog", "kind: the fault was not resolved against the catalog"))
    elif f.ok and f.kind != p.kind:
        out.append(_reject("not-in-catalog", f"kind: resolved as {f.kind!r}, the proposal names {p.kind!r}"))
    return out


@rule("pf-kind-target")
def _kind_target(c: Ctx) -> list[Finding]:
    """Each fault kind goes only on the target roles its profile accepts (e.g. a CPU burn on the host)."""
    f = c.inp.fault
    if c.target is None or not f.ok or f.profile is None or c.target in f.profile.targets:
        return []
    return [_reject("bad-target", f"{f.kind} targets {', '.join(f.profile.targets)}, not {c.target}")]


# --- the safety kernel (safe mode, rollouts) --------------------------------------------------------

@rule("pf-policy-kernel")
def _policy_kernel(c: Ctx) -> list[Finding]:
    """The same policy kernel that judges every action judges the experiment as a `chaos` action (no fault
    in safe mode, none during a rollout); each violated policy rule is a reason `policy:<rule id>`."""
    p = c.inp.proposal
    if not math.isfinite(c.inp.now):
        return [_reject("bad-clock", "evaluation time is not finite")]
    action = ProposedAction(kind="chaos", scope="chaos", requested_by="chaos",
                            reason=f"chaos experiment {p.label()}"[:2000] or "chaos experiment")
    pol = decide(action, c.inp.cube, [], c.inp.now, c.inp.policy)
    return [_reject(f"policy:{rid}", why) for rid, why in zip(pol.violated, pol.reasons, strict=True)]


# --- steady state, error budget, concurrency, window -------------------------------------------

@rule("pf-steady-state")
def _steady_state(c: Ctx) -> list[Finding]:
    """The Cube is in steady state: no registered gate (nor the experiment's own guard) fails now."""
    return [_reject("gate-failing", f"gate {g.name} is failing ({g.reason or 'no reason'}): not in steady state")
            for g in c.inp.gates if g.status == "fail"]


@rule("pf-hypothesis-sees")
def _hypothesis_sees(c: Ctx) -> list[Finding]:
    """At least one gate of the steady-state hypothesis passes now, so a breach during the run would be seen."""
    statuses = {g.name: g.status for g in c.inp.gates}
    if any(statuses.get(n) == "pass" for n in c.inp.hypothesis_gates):
        return []
    return [_escalate("hypothesis-blind", "no gate of the steady-state hypothesis passes now: "
                      "a breach could go unseen")]


@rule("pf-error-budget")
def _error_budget(c: Ctx) -> list[Finding]:
    """Enough error budget is left (chaos.limits.min_error_budget); an unknown budget needs an operator."""
    b = c.inp.error_budget_remaining
    if b is None or not math.isfinite(b):
        return [_escalate("error-budget-unknown", "the error budget left is unknown")]
    if b < c.lim.min_error_budget:
        return [_reject("error-budget", f"error budget left {b:.0%} < {c.lim.min_error_budget:.0%}")]
    return []


@rule("pf-one-at-a-time")
def _one_at_a_time(c: Ctx) -> list[Finding]:
    """One experiment at a time: none may start while another is running."""
    n = c.inp.running_experiments
    return [_reject("concurrent", f"{n} experiment(s) already running")] if n > 0 else []


@rule("pf-maintenance-window")
def _maintenance_window(c: Ctx) -> list[Finding]:
    """Experiments start only inside the configured daily maintenance windows (UTC; none configured: always)."""
    w = c.lim.maintenance_windows
    if math.isfinite(c.inp.now) and not in_window(c.inp.now, w):
        return [_reject("maintenance-window", f"outside the maintenance windows {', '.join(w)} (UTC)")]
    return []


# --- revert path --------------------------------------------------------------------------------

@rule("pf-reversible")
def _reversible(c: Ctx) -> list[Finding]:
    """Every fault has a revert path; a kind without one never runs."""
    if c.blast is not None and not c.blast.reversible:
        return [_reject("irreversible", f"{c.kind} has no revert path")]
    return []


@rule("pf-revert-tested")
def _revert_tested(c: Ctx) -> list[Finding]:
    """The kind's revert has worked on this Cube before (e.g. `samantha chaos selftest`); until then a human
    approves its first run."""
    b = c.blast
    if b is not None and b.reversible and c.kind not in c.inp.revert_tested:
        return [_escalate("revert-untested", f"the revert of {c.kind} ({b.revert}) has not been verified on this "
                          "Cube yet")]
    return []


# --- duration and traffic share -------------------------------------------------------------------

@rule("pf-unattended-duration")
def _unattended_duration(c: Ctx) -> list[Finding]:
    """A fault longer than the unattended cap (chaos.limits.max_duration_s) needs an operator."""
    b = c.blast
    if b is not None and b.duration_s > c.lim.max_duration_s:
        return [_escalate("duration", f"{b.duration_s:g} s > unattended cap {c.lim.max_duration_s:g} s")]
    return []


@rule("pf-active-only-path")
def _active_only_path(c: Ctx) -> list[Finding]:
    """On the active slot's path (the Cube's only serving path) a fault touches at most
    chaos.limits.active_max_share of its requests unattended."""
    b = c.blast
    if b is not None and b.role == "active" and b.traffic_share > c.lim.active_max_share:
        return [_escalate("active-share", f"touches {b.traffic_share:.0%} of the active slot's only path "
                          f"(> {c.lim.active_max_share:.0%})")]
    return []


@rule("pf-active-slot-down")
def _active_slot_down(c: Ctx) -> list[Finding]:
    """Stopping or killing the active slot's process takes the Cube's serving slot down: an operator decides."""
    f = c.inp.fault
    if c.blast is not None and c.blast.role == "active" and f.profile is not None \
            and f.profile.mechanism == "process":
        return [_escalate("active-slot-down", f"{c.kind} on the active slot stops the Cube's serving slot")]
    return []


@rule("pf-active-fallback")
def _active_fallback(c: Ctx) -> list[Finding]:
    """A fault on the active path needs a serviceable standby to fall back to."""
    if c.blast is not None and c.blast.role == "active" and not c.inp.cube.serviceable("standby"):
        return [_escalate("no-fallback", "the standby is not serviceable: the active path has no fallback")]
    return []


@rule("pf-standby-loaded")
def _standby_loaded(c: Ctx) -> list[Finding]:
    """A fault on the standby path needs a loaded bundle in the standby slot: there is nothing to exercise
    otherwise."""
    s = c.inp.cube.standby
    if c.blast is not None and c.blast.role == "standby" and (s.bundle is None or not s.loaded):
        return [_reject("standby-empty", "the standby slot has no bundle: nothing to exercise")]
    return []


@rule("pf-standby-live-share")
def _standby_live_share(c: Ctx) -> list[Finding]:
    """While the standby serves live traffic, a fault on its path touches at most chaos.limits.active_max_share
    of all requests unattended."""
    b, cap = c.blast, c.lim.active_max_share
    if b is not None and b.role == "standby" and b.live_share > cap:
        return [_escalate("live-share", f"the standby serves live traffic now: {b.live_share:.0%} of all requests "
                          f"touched (> {cap:.0%})")]
    return []


@rule("pf-input-share")
def _input_share(c: Ctx) -> list[Finding]:
    """A fault at the router's input stage reaches every slot: at most chaos.limits.active_max_share of all
    requests unattended."""
    f, b, cap = c.inp.fault, c.blast, c.lim.active_max_share
    if b is not None and f.profile is not None and f.profile.mechanism == "input" and b.traffic_share > cap:
        return [_escalate("noise-share", f"noise on {b.traffic_share:.0%} of all requests (> {cap:.0%})")]
    return []


@rule("pf-drill-standby")
def _drill_standby(c: Ctx) -> list[Finding]:
    """A flip drill moves all live traffic onto the standby, so the standby must be serviceable."""
    f = c.inp.fault
    if c.blast is not None and f.profile is not None and f.profile.mechanism == "flip" \
            and not c.inp.cube.serviceable("standby"):
        return [_reject("drill-standby", "the standby is not serviceable: a drill would flip live traffic onto it")]
    return []


@rule("pf-drill-rate")
def _drill_rate(c: Ctx) -> list[Finding]:
    """At most chaos.limits.drills_per_hour flip drills in the last hour."""
    f = c.inp.fault
    if c.blast is None or f.profile is None or f.profile.mechanism != "flip":
        return []
    recent = [t for t in c.inp.recent_drills if c.inp.now - t < 3600]
    if len(recent) >= c.lim.drills_per_hour:
        return [_reject("drill-rate", f"{len(recent)} rollback drill(s) in the last hour "
                        f"(max {c.lim.drills_per_hour})")]
    return []


# --- host resources -------------------------------------------------------------------------------

@rule("pf-cpu")
def _cpu(c: Ctx) -> list[Finding]:
    """The CPU a fault burns: more cores than the host has is rejected; more than is free beyond the reserve
    (chaos.limits.cpu_reserve_cores) needs an operator."""
    b, host, lim = c.blast, c.inp.host, c.lim
    if b is None:
        return []
    cpu_free = host.cpu_count * (1.0 - host.cpu_used_ratio)
    if b.cpu_cores > host.cpu_count:
        return [_reject("cpu-capacity", f"needs {b.cpu_cores:g} cores, the host has {host.cpu_count}")]
    if b.cpu_cores > 0 and b.cpu_cores > cpu_free - lim.cpu_reserve_cores:
        return [_escalate("cpu-headroom", f"needs {b.cpu_cores:g} cores, {cpu_free:.2f} free, "
                          f"{lim.cpu_reserve_cores:g} reserved")]
    return []


@rule("pf-memory")
def _memory(c: Ctx) -> list[Finding]:
    """The memory a fault holds plus the runner's own: more than is available is rejected; more than is
    available beyond the reserve (chaos.limits.memory_reserve_mb) needs an operator."""
    b, host, lim = c.blast, c.inp.host, c.lim
    if b is None:
        return []
    need = b.memory_mb + lim.runner_memory_mb
    if need > host.mem_available_mb:
        return [_reject("memory-capacity", f"needs {need:.0f} MB, {host.mem_available_mb:.0f} MB available")]
    if need > host.mem_available_mb - lim.memory_reserve_mb:
        return [_escalate("memory-headroom", f"needs {need:.0f} MB, {host.mem_available_mb:.0f} MB available, "
                          f"{lim.memory_reserve_mb:g} MB reserved")]
    return []


@rule("pf-disk")
def _disk(c: Ctx) -> list[Finding]:
    """The disk a fault fills must leave the store's reserve (chaos.limits.disk_reserve_mb) free."""
    b, host, lim = c.blast, c.inp.host, c.lim
    if b is not None and b.disk_mb > host.disk_free_mb - lim.disk_reserve_mb:
        return [_reject("disk-headroom", f"needs {b.disk_mb:g} MB on the store's disk, {host.disk_free_mb:.0f} MB "
                        f"free, {lim.disk_reserve_mb:g} MB reserved for the store")]
    return []


# --- running them ---------------------------------------------------------------------------------

def _context(inp: PreflightInput) -> Ctx:
    t = inp.proposal.target
    target = t if isinstance(t, str) and t in TARGETS else None
    f, blast = inp.fault, None
    if target is not None and f.ok and f.kind == inp.proposal.kind and f.profile is not None \
            and f.demand is not None and target in f.profile.targets:
        blast = blast_radius(f.profile, f.demand, target, 100.0 * inp.cube.weights.get("standby", 0.0))
    return Ctx(inp, target, blast)


def check(inp: PreflightInput) -> PreflightResult:
    """Run every pre-flight rule and report every reason (rule order, then each rule's own order)."""
    c = _context(inp)
    reasons = [Reason(code=code, severity=sev, message=msg, rule=r.id)
               for r in RULES for code, sev, msg in r.check(c)]
    if c.blast is None:
        return PreflightResult(verdict=_verdict(reasons), reasons=reasons)
    return PreflightResult(verdict=_verdict(reasons), reasons=reasons, blast=c.blast, fault=inp.fault.fault)


def _verdict(reasons: list[Reason]) -> Verdict:
    if any(r.severity == "reject" for r in reasons):
        return "reject"
    return "escalate" if reasons else "sanctioned"


def may_run_approved(result: PreflightResult, approved_codes: set[str]) -> bool:
    """An approved proposal at execution time: no reject reason, and no escalation the operator did not approve
    (health may have changed since: a new concern goes back to a human)."""
    return result.verdict != "reject" and all(r.code in approved_codes for r in result.reasons
                                              if r.severity == "escalate")


def rule_catalog() -> list[dict[str, str]]:
    """Every pre-flight rule's id and explanation, for the API, the CLI, docs and audit records."""
    return [{"id": r.id, "doc": r.doc} for r in RULES]
