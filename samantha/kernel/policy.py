"""The safety kernel: every action, from any requester, is judged here before it reaches the Cube.

Pure: no I/O and no clock reads. The caller passes the proposed action, a
snapshot of Cube state, the actions already applied (history) and the current
wall time. Each rule below is a small function with an id; its docstring is its
explanation. `decide` runs every rule and reports every violation, so a refusal
says all of what is wrong, not only the first thing.

Who may act:
- playbooks, in scopes canary / active / host;
- the rollout controller, in scope rollout;
- the chaos engine, in scope chaos;
- operators, in scope operator (any action, still bound by every invariant and limit);
- never the LLM: its output is advice that one of the above must adopt as its own.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from samantha.core.config import PolicyConfig
from samantha.core.domain import ActionKind, Severity, SlotRole
from samantha.kernel.ratelimit import allows, count_in_window

Requester = Literal["playbook", "llm", "operator", "rollout", "chaos"]
Scope = Literal["canary", "active", "host", "rollout", "chaos", "operator"]

SCOPE_ALLOWS: dict[str, frozenset[str]] = {
    "canary": frozenset({"abort_rollout", "hold_rollout", "quarantine", "alert"}),
    "active": frozenset({"flip", "quarantine", "abort_rollout", "alert", "safe_mode"}),
    "host": frozenset({"hold_rollout", "alert", "safe_mode"}),
    "rollout": frozenset({"advance_rollout", "hold_rollout", "abort_rollout", "flip", "quarantine", "alert"}),
    "chaos": frozenset({"chaos", "alert"}),
    "operator": frozenset(get_args(ActionKind)),
}
REQUESTER_SCOPES: dict[str, frozenset[str]] = {
    "playbook": frozenset({"canary", "active", "host"}),
    "rollout": frozenset({"rollout"}),
    "chaos": frozenset({"chaos"}),
    "operator": frozenset({"operator"}),
    "llm": frozenset(),
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProposedAction(_Model):
    kind: ActionKind
    scope: Scope
    requested_by: Requester
    reason: str = Field(min_length=1, max_length=2000)
    playbook: str | None = Field(None, min_length=1, max_length=200, description="set iff requested_by=playbook")
    target_slot: SlotRole | None = None
    target_bundle: str | None = Field(None, min_length=1, max_length=200)
    severity: Severity | None = Field(None, description="alerts only")
    firing: str | None = Field(None, max_length=200, description="id shared by the actions of one playbook "
                               "firing; None: the action is a firing of its own")
    cooldown_s: float | None = Field(None, ge=0, description="the playbook's limits.cooldown")
    max_actions_per_hour: int | None = Field(None, ge=0, description="the playbook's limits.max_actions_per_hour "
                                             "(counted in firings, as playbooks define it)")

    @model_validator(mode="after")
    def _shape(self) -> ProposedAction:
        if (self.requested_by == "playbook") != (self.playbook is not None):
            raise ValueError("playbook must name the playbook exactly when requested_by is 'playbook'")
        if self.kind == "quarantine" and self.target_bundle is None:
            raise ValueError("quarantine needs target_bundle")
        if self.kind == "alert" and self.severity is None:
            raise ValueError("alert needs severity")
        if self.kind == "flip" and self.target_slot == "active":
            raise ValueError("a flip promotes the standby slot: target_slot must be 'standby' or omitted")
        return self

    @property
    def target(self) -> str:
        """What the action is about, for cooldown keys and history."""
        return self.target_bundle or self.target_slot or "-"


class ActionRecord(_Model):
    """An action that was applied: the history the limits count."""

    ts: float
    kind: ActionKind
    requested_by: Requester
    playbook: str | None = None
    firing: str | None = None
    target: str = "-"

    @field_validator("ts")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v

    @classmethod
    def of(cls, action: ProposedAction, ts: float) -> ActionRecord:
        return cls(ts=ts, kind=action.kind, requested_by=action.requested_by, playbook=action.playbook,
                   firing=action.firing, target=action.target)


class SlotState(_Model):
    bundle: str | None = None
    healthy: bool = False
    loaded: bool = False
    verified: bool = False


class CubeSnapshot(_Model):
    active: SlotState
    standby: SlotState
    weights: dict[SlotRole, float] = Field(default_factory=lambda: {"active": 1.0, "standby": 0.0})
    quarantined: frozenset[str] = frozenset()
    safe_mode: bool = False
    rollout_in_progress: bool = False
    known_good: frozenset[str] = frozenset()

    def slot(self, role: SlotRole) -> SlotState:
        return self.active if role == "active" else self.standby

    def serviceable(self, role: SlotRole) -> bool:
        """Fit to serve all traffic: loaded, healthy, verified, and its bundle not quarantined."""
        s = self.slot(role)
        return (s.bundle is not None and s.loaded and s.healthy and s.verified
                and s.bundle not in self.quarantined)


class PolicyDecision(_Model):
    allowed: bool
    action: ProposedAction
    reasons: list[str]
    violated: list[str]

    def explain(self) -> str:
        if self.allowed:
            return f"allowed: {self.action.kind} {self.action.target}"
        return "refused: " + "; ".join(f"[{r}] {why}" for r, why in zip(self.violated, self.reasons, strict=True))


@dataclass(frozen=True)
class Ctx:
    action: ProposedAction
    state: CubeSnapshot
    history: Sequence[ActionRecord]
    now: float
    config: PolicyConfig


@dataclass(frozen=True)
class Rule:
    id: str
    doc: str
    check: Callable[[Ctx], str | None]  # the reason when violated, else None


RULES: list[Rule] = []


def rule(rule_id: str) -> Callable[[Callable[[Ctx], str | None]], Callable[[Ctx], str | None]]:
    def register(fn: Callable[[Ctx], str | None]) -> Callable[[Ctx], str | None]:
        RULES.append(Rule(rule_id, " ".join((fn.__doc__ or "").split()), fn))
        return fn
    return register


# --- who may act, and what ---------------------------------------------------------------------

@rule("llm-never-acts")
def _llm_never_acts(c: Ctx) -> str | None:
    """The model proposes; code disposes. An action submitted by the LLM is refused: a playbook,
    the rollout controller or an operator must adopt the suggestion as its own."""
    if c.action.requested_by == "llm":
        return "the LLM may only advise, never act"
    return None


@rule("requester-scope")
def _requester_scope(c: Ctx) -> str | None:
    """Each requester acts only in its own scopes (playbooks: canary/active/host; rollout
    controller: rollout; chaos engine: chaos; operators: operator)."""
    a = c.action
    if a.requested_by != "llm" and a.scope not in REQUESTER_SCOPES[a.requested_by]:
        return f"{a.requested_by} may not act in scope {a.scope!r}"
    return None


@rule("scope-allow-list")
def _scope_allow_list(c: Ctx) -> str | None:
    """Each scope has a closed list of actions it may take."""
    a = c.action
    if a.kind not in SCOPE_ALLOWS[a.scope]:
        return f"{a.kind} is not allowed in scope {a.scope!r} (allowed: {', '.join(sorted(SCOPE_ALLOWS[a.scope]))})"
    return None


@rule("target-matches-state")
def _target_matches_state(c: Ctx) -> str | None:
    """An action that names a slot and a bundle must find that bundle in that slot now: a decision
    made on stale state is refused rather than applied to the wrong bundle. Alerts are exempt: a
    stale alert is still worth reading."""
    a = c.action
    if a.kind == "alert":
        return None
    role = "standby" if a.kind == "flip" else a.target_slot
    if role is not None and a.target_bundle is not None and c.state.slot(role).bundle != a.target_bundle:
        return f"{role} slot holds {c.state.slot(role).bundle!r}, not {a.target_bundle!r}"
    return None


# --- invariants on the Cube --------------------------------------------------------------------

@rule("flip-target-serviceable")
def _flip_target_serviceable(c: Ctx) -> str | None:
    """A flip sends all traffic to the standby slot, so that slot must be loaded, healthy and verified."""
    if c.action.kind != "flip":
        return None
    s = c.state.standby
    missing = [name for name, ok in (("loaded", s.loaded and s.bundle is not None), ("healthy", s.healthy),
                                     ("verified", s.verified)) if not ok]
    return f"standby slot is not {', '.join(missing)}" if missing else None


@rule("flip-not-quarantined")
def _flip_not_quarantined(c: Ctx) -> str | None:
    """Never flip to a quarantined bundle."""
    b = c.state.standby.bundle
    if c.action.kind == "flip" and b is not None and b in c.state.quarantined:
        return f"standby bundle {b!r} is quarantined"
    return None


@rule("quarantine-keeps-one-healthy")
def _quarantine_keeps_one_healthy(c: Ctx) -> str | None:
    """Never quarantine the last healthy bundle: when the target serves a serviceable slot, another
    serviceable slot with a different bundle must remain to carry the traffic."""
    if c.action.kind != "quarantine":
        return None
    healthy = {c.state.slot(r).bundle for r in ("active", "standby") if c.state.serviceable(r)}
    if c.action.target_bundle in healthy and not healthy - {c.action.target_bundle}:
        return f"{c.action.target_bundle!r} is the last healthy bundle"
    return None


@rule("advance-needs-serviceable-canary")
def _advance_needs_serviceable_canary(c: Ctx) -> str | None:
    """Rollout progress sends more traffic to the standby slot: only during a rollout, and only to a
    standby that is loaded, healthy, verified and not quarantined."""
    if c.action.kind != "advance_rollout":
        return None
    if not c.state.rollout_in_progress:
        return "no rollout is in progress"
    if not c.state.serviceable("standby"):
        return "standby slot is not serviceable"
    return None


@rule("no-chaos-during-rollout")
def _no_chaos_during_rollout(c: Ctx) -> str | None:
    """Fault injection waits while a rollout is in progress: a fault would confound the canary judge."""
    if c.action.kind == "chaos" and c.state.rollout_in_progress:
        return "a rollout is in progress"
    return None


# --- safe mode -------------------------------------------------------------------------------

@rule("safe-mode-no-rollout-progress")
def _safe_mode_no_rollout_progress(c: Ctx) -> str | None:
    """In safe mode no rollout advances (holding and aborting stay allowed)."""
    if c.state.safe_mode and c.action.kind == "advance_rollout":
        return "safe mode: rollouts do not advance"
    return None


@rule("safe-mode-no-chaos")
def _safe_mode_no_chaos(c: Ctx) -> str | None:
    """In safe mode no fault is injected."""
    if c.state.safe_mode and c.action.kind == "chaos":
        return "safe mode: no fault injection"
    return None


@rule("safe-mode-flip-to-known-good")
def _safe_mode_flip_to_known_good(c: Ctx) -> str | None:
    """In safe mode a flip may only go back to a last-known-good bundle."""
    b = c.state.standby.bundle
    if c.state.safe_mode and c.action.kind == "flip" and b not in c.state.known_good:
        return f"safe mode: standby bundle {b!r} is not known-good"
    return None


# --- rate limits and anti-flap (alerts are exempt: dedup in samantha.uplink.alerts bounds them) --------

def _times(c: Ctx, keep: Callable[[ActionRecord], bool]) -> list[float]:
    return [r.ts for r in c.history if keep(r)]


@rule("flip-rate-limit")
def _flip_rate_limit(c: Ctx) -> str | None:
    """At most policy.flip_max_per_hour flips, from any requester, in any rate window."""
    cfg = c.config
    if c.action.kind == "flip" and not allows(_times(c, lambda r: r.kind == "flip"), c.now, cfg.rate_window_s,
                                              cfg.flip_max_per_hour):
        return f"{cfg.flip_max_per_hour} flips already in the last {cfg.rate_window_s:g} s"
    return None


@rule("quarantine-rate-limit")
def _quarantine_rate_limit(c: Ctx) -> str | None:
    """At most policy.quarantine_max_per_hour quarantines, from any requester, in any rate window."""
    cfg = c.config
    if c.action.kind == "quarantine" and not allows(_times(c, lambda r: r.kind == "quarantine"), c.now,
                                                    cfg.rate_window_s, cfg.quarantine_max_per_hour):
        return f"{cfg.quarantine_max_per_hour} quarantines already in the last {cfg.rate_window_s:g} s"
    return None


def _earlier_firings(c: Ctx) -> list[tuple[str, float]]:
    """(firing key, ts) of this playbook's applied non-alert actions from firings other than this one."""
    a = c.action
    return [(r.firing or f"#{i}", r.ts) for i, r in enumerate(c.history)
            if r.requested_by == "playbook" and r.playbook == a.playbook and r.kind != "alert"
            and (a.firing is None or r.firing != a.firing)]


@rule("playbook-cooldown")
def _playbook_cooldown(c: Ctx) -> str | None:
    """A playbook does not fire again within its cooldown (limits.cooldown, else
    policy.playbook_cooldown_s); the actions of one firing go through together."""
    a = c.action
    if a.requested_by != "playbook" or a.kind == "alert":
        return None
    cooldown = c.config.playbook_cooldown_s if a.cooldown_s is None else a.cooldown_s
    if cooldown > 0 and count_in_window([ts for _, ts in _earlier_firings(c)], c.now, cooldown):
        return f"playbook {a.playbook!r} acted less than {cooldown:g} s ago"
    return None


@rule("playbook-max-firings-per-hour")
def _playbook_max_firings(c: Ctx) -> str | None:
    """Anti-flap: a playbook acts in at most N firings in any rate window (limits.max_actions_per_hour,
    else policy.playbook_max_actions_per_hour). Firings of alerts only do not count."""
    a = c.action
    if a.requested_by != "playbook" or a.kind == "alert":
        return None
    cap = c.config.playbook_max_actions_per_hour if a.max_actions_per_hour is None else a.max_actions_per_hour
    lo = c.now - c.config.rate_window_s
    firings = {key for key, ts in _earlier_firings(c) if ts > lo}
    if len(firings) >= cap:
        return f"playbook {a.playbook!r} already acted in {cap} firings in the last {c.config.rate_window_s:g} s"
    return None


def scope_for_playbook(slot: SlotRole | None, rollout_step: bool = False) -> Scope:
    """A playbook's `when.scope` as a kernel scope: standby or a rollout step is the canary, active is
    the active slot, and no slot is the host."""
    if slot == "standby" or (slot is None and rollout_step):
        return "canary"
    return "active" if slot == "active" else "host"


def decide(action: ProposedAction, state: CubeSnapshot, history: Sequence[ActionRecord], now: float,
           config: PolicyConfig | None = None) -> PolicyDecision:
    """Judge one proposed action against every rule. `now` is wall time on the history's clock."""
    if not math.isfinite(now):
        raise ValueError("now must be a finite wall time")
    ctx = Ctx(action, state, history, now, config or PolicyConfig())
    violated, reasons = [], []
    for r in RULES:
        why = r.check(ctx)
        if why is not None:
            violated.append(r.id)
            reasons.append(why)
    return PolicyDecision(allowed=not violated, action=action, reasons=reasons, violated=violated)


def rule_catalog() -> list[dict[str, str]]:
    """Every rule's id and explanation, for the API, docs and audit records."""
    return [{"id": r.id, "doc": r.doc} for r in RULES]
