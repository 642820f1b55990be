"""SRE-authored playbooks: when gates say so, for long enough, in scope -> actions, within limits.

A playbook is a YAML file validated by pydantic (errors carry file:line:column).
`lint` adds the checks a schema cannot make: unknown gates and metrics, impossible
windows, duplicate names, actions that make no sense in the playbook's scope.
`PlaybookRunner` turns a stream of verdicts into firings (deterministic, no LLM);
`backtest` replays recorded telemetry through it on a simulated clock.
"""

from __future__ import annotations

import fnmatch
import json
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from samantha.core.clock import SimClock
from samantha.core.domain import SlotRole
from samantha.core.validated_yaml import (
    DocumentError,
    Loc,
    Problem,
    field_path,
    locate,
    parse_yaml,
    problems_from_validation,
)
from samantha.gates.actions import Action
from samantha.gates.engine import GateEngine
from samantha.gates.registry import KNOWN_METRICS, GateRegistry, Provenance
from samantha.gates.spec import (
    NAME_PATTERN,
    DriftGate,
    Duration,
    Gate,
    GateBase,
    SequentialGate,
    StalenessGate,
    parse_duration,
)
from samantha.gates.verdict import Status, Verdict
from samantha.gates.windows import TelemetryReader

StepRef = int | Literal["shadow"]


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Scope(_M):
    slot: SlotRole | None = Field(None, description="the slot the playbook is about")
    bundle: str | None = Field(None, description="glob on the bundle name (standby's during a rollout)")
    rollout_step: list[StepRef] | None = Field(None, description="active only at these rollout steps (percent)")


class When(_M):
    any: list[str | Gate] | None = Field(None, description="fires when any gate fails")
    all: list[str | Gate] | None = Field(None, description="fires when every gate fails")
    for_: int | str = Field(1, alias="for", description="N consecutive failing evaluations, or a duration (30s)")
    scope: Scope = Scope()

    @field_validator("for_")
    @classmethod
    def _for(cls, v: int | str) -> int | str:
        if isinstance(v, bool):
            raise ValueError("for: a count of evaluations (3) or a duration (30s)")
        if isinstance(v, int):
            if v < 1:
                raise ValueError("for: at least 1 evaluation")
            return v
        if parse_duration(v) <= 0:
            raise ValueError("for: duration must be > 0")
        return v

    @property
    def refs(self) -> list[str | Gate]:
        return list(self.any or self.all or [])

    @property
    def mode(self) -> Literal["any", "all"]:
        return "all" if self.all else "any"

    @property
    def for_count(self) -> int | None:
        return self.for_ if isinstance(self.for_, int) else None

    @property
    def for_seconds(self) -> float | None:
        return None if isinstance(self.for_, int) else parse_duration(self.for_)


class OnInconclusive(_M):
    after: Duration = Field(gt=0, description="how long the gates may stay inconclusive")
    then: list[Action] = Field(min_length=1)


class Limits(_M):
    cooldown: Duration = Field(300.0, ge=0, description="no new firing this soon after the last")
    max_actions_per_hour: int = Field(4, ge=1, description="anti-flap: firings beyond this are suppressed")
    on_inconclusive_for: OnInconclusive | None = None


class Playbook(_M):
    name: str = Field(pattern=NAME_PATTERN)
    version: int = Field(ge=1)
    owner: str = Field(min_length=1)
    description: str = ""
    priority: int = Field(50, ge=0, le=1000, description="higher runs first when several fire together")
    metrics: list[str] = Field(default_factory=list, description="custom metric names this playbook may read")
    gates: list[Gate] = Field(default_factory=list, description="named gates declared here")
    when: When
    then: list[Action] = Field(min_length=1)
    limits: Limits = Limits()


def playbook_schema() -> dict[str, Any]:
    return Playbook.model_json_schema(by_alias=True)


# ---------------- loading and lint ----------------

@dataclass
class Loaded:
    source: str
    playbook: Playbook | None
    marks: dict[Loc, tuple[int, int]]
    problems: list[Problem] = field(default_factory=list)


def load_text(text: str, source: str) -> Loaded:
    try:
        data, marks = parse_yaml(text, source)
    except DocumentError as e:
        return Loaded(source, None, {}, e.problems)
    if not isinstance(data, dict):
        return Loaded(source, None, marks, [Problem(source, 1, 1, "", "a playbook is a YAML mapping")])
    try:
        return Loaded(source, Playbook.model_validate(data), marks)
    except ValidationError as e:
        return Loaded(source, None, marks, problems_from_validation(e, source, marks))


def load_file(path: str | Path) -> Loaded:
    p = Path(path)
    try:
        return load_text(p.read_text(encoding="utf-8"), str(p))
    except (OSError, UnicodeDecodeError) as e:
        return Loaded(str(p), None, {}, [Problem(str(p), 0, 0, "", f"cannot read: {e}")])


def load_playbook(path: str | Path) -> Playbook:
    """One valid playbook or DocumentError with every problem (schema only; use lint for the rest)."""
    ld = load_file(path)
    if ld.problems or ld.playbook is None:
        raise DocumentError(ld.problems)
    return ld.playbook


# Actions that act on a rollout, and what each scope forbids.
_ROLLOUT_ACTIONS = {"abort_rollout", "hold_rollout"}


def _scope_problems(pb: Playbook) -> list[tuple[Loc, str]]:
    out: list[tuple[Loc, str]] = []
    sc = pb.when.scope
    kinds = [a.action for a in pb.then]
    lists: list[tuple[Loc, list[Any]]] = [(("then",), list(pb.then))]
    if pb.limits.on_inconclusive_for:
        lists.append((("limits", "on_inconclusive_for", "then"), list(pb.limits.on_inconclusive_for.then)))
    for base, actions in lists:
        for i, a in enumerate(actions):
            loc = (*base, i, "action")
            if a.action in _ROLLOUT_ACTIONS and sc.slot == "active":
                out.append((loc, f"{a.action} is not allowed in scope slot=active: the active slot is not rolling out"))
            if a.action == "abort_rollout" and sc.slot is None and sc.rollout_step is None:
                out.append((loc, "abort_rollout needs a rollout scope (scope.slot: standby or scope.rollout_step)"))
            if a.action == "flip" and sc.slot == "standby":
                out.append((loc, "flip is not allowed in scope slot=standby: it would promote the suspect bundle"))
            if a.action == "flip" and sc.rollout_step is not None:
                out.append((loc, "flip is not allowed during a rollout step: abort the rollout instead"))
            if a.action == "quarantine" and a.target == "active":
                out.append((loc, "quarantine target=active would leave nothing serving: flip, then quarantine standby"))
    if "abort_rollout" in kinds and "hold_rollout" in kinds:
        out.append((("then",), "abort_rollout and hold_rollout contradict each other"))
    return out


def _window_problems(g: GateBase, loc: Loc, raw_horizon_s: float) -> list[tuple[Loc, str]]:
    out: list[tuple[Loc, str]] = []
    reads_raw = not isinstance(g, StalenessGate)
    if reads_raw and g.window > raw_horizon_s:
        out.append(((*loc, "window"), f"window {g.window:g}s exceeds raw retention {raw_horizon_s:g}s: "
                                      "the data would be rolled up before it is judged"))
    if isinstance(g, DriftGate) and g.offset + g.baseline_len > raw_horizon_s:
        out.append(((*loc, "baseline_offset"), f"baseline reaches back {g.offset + g.baseline_len:g}s, beyond "
                                               f"raw retention {raw_horizon_s:g}s"))
    if isinstance(g, SequentialGate) and g.bin >= g.window:
        out.append(((*loc, "bin"), f"bin {g.bin:g}s is not shorter than window {g.window:g}s"))
    return out


def lint(paths: Sequence[str | Path], registry: GateRegistry | None = None,
         raw_horizon_s: float = 3600.0) -> tuple[list[Loaded], list[Problem]]:
    """Every problem in every file, at once."""
    registry = registry or GateRegistry.with_builtins()
    loaded = [load_file(p) for p in paths]
    problems = [pr for ld in loaded for pr in ld.problems]
    declared: dict[str, str] = {}  # gate name -> source that declared it
    seen_pb: dict[str, str] = {}
    for ld in loaded:
        pb = ld.playbook
        if pb is None:
            continue
        for i, g in enumerate(pb.gates):
            if g.name in declared or g.name in registry:
                where = declared.get(g.name, "the built-in registry")
                problems.append(_at(ld, ("gates", i, "name"), f"duplicate gate name {g.name!r} (also in {where})"))
            else:
                declared[g.name] = ld.source
    for ld in loaded:
        pb = ld.playbook
        if pb is None:
            continue
        if pb.name in seen_pb:
            problems.append(_at(ld, ("name",), f"duplicate playbook name {pb.name!r} (also in {seen_pb[pb.name]})"))
        seen_pb.setdefault(pb.name, ld.source)
        local = {g.name for g in pb.gates}
        metrics = KNOWN_METRICS | set(pb.metrics)
        gates: list[tuple[Loc, GateBase]] = [(("gates", i), g) for i, g in enumerate(pb.gates)]
        key = pb.when.mode
        inline_names: set[str] = set()
        for i, ref in enumerate(pb.when.refs):
            loc: Loc = ("when", key, i)
            if isinstance(ref, str):
                if ref not in local and ref not in declared and ref not in registry:
                    problems.append(_at(ld, loc, f"unknown gate {ref!r}"))
            else:
                if ref.name in inline_names or ref.name in local or ref.name in registry:
                    problems.append(_at(ld, (*loc, "name"), f"duplicate gate name {ref.name!r}"))
                inline_names.add(ref.name)
                gates.append((loc, ref))
        if not pb.when.refs:
            problems.append(_at(ld, ("when",), "when needs `any:` or `all:` with at least one gate"))
        if pb.when.any and pb.when.all:
            problems.append(_at(ld, ("when", "all"), "use either any: or all:, not both"))
        for loc, g in gates:
            for m in g.metrics() if not isinstance(g, StalenessGate) else ():
                if m not in metrics:
                    problems.append(_at(ld, (*loc, "metric"), f"unknown metric {m!r} (declare it under metrics: "
                                                              "if it is a custom series)"))
            for wl, reason in _window_problems(g, loc, raw_horizon_s):
                problems.append(_at(ld, wl, reason))
        fs = pb.when.for_seconds
        inc = pb.limits.on_inconclusive_for
        if fs is not None and fs > 3600 * 24:
            problems.append(_at(ld, ("when", "for"), f"for {fs:g}s is longer than a day: it can never fire in time"))
        if inc is not None and fs is not None and inc.after < fs:
            problems.append(_at(ld, ("limits", "on_inconclusive_for", "after"),
                                f"after {inc.after:g}s is shorter than for {fs:g}s"))
        if pb.limits.cooldown >= 3600 and pb.limits.max_actions_per_hour > 1:
            problems.append(_at(ld, ("limits", "max_actions_per_hour"),
                                f"cooldown {pb.limits.cooldown:g}s allows at most 1 firing per hour, "
                                f"max_actions_per_hour {pb.limits.max_actions_per_hour} is unreachable"))
        for loc, reason in _scope_problems(pb):
            problems.append(_at(ld, loc, reason))
    problems.sort(key=lambda p: (p.source, p.line, p.column))
    return loaded, problems


def _at(ld: Loaded, loc: Loc, reason: str) -> Problem:
    line, col = locate(ld.marks, loc)
    return Problem(ld.source, line, col, field_path(loc), reason)


# ---------------- running ----------------

@dataclass(frozen=True)
class RunContext:
    now: float
    rollout_step: StepRef | None = None
    active_bundle: str | None = None
    canary_bundle: str | None = None


class Firing(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ts: float
    playbook: str
    version: int
    priority: int
    trigger: Literal["fail", "inconclusive"]
    actions: list[Action]
    suppressed: str | None = Field(None, description="why limits held it back (cooldown / anti-flap)")
    evidence: list[Verdict]


@dataclass
class _State:
    streak: int = 0
    bad_since: float | None = None
    inconclusive_since: float | None = None
    last_fired: float | None = None
    fired: deque[float] = field(default_factory=deque)


class PlaybookRunner:
    def __init__(self, playbooks: Sequence[Playbook], registry: GateRegistry | None = None) -> None:
        self.registry = registry or GateRegistry.with_builtins()
        self.playbooks = sorted(playbooks, key=lambda p: -p.priority)
        self._refs: dict[str, list[str]] = {}
        self._gates: dict[str, GateBase] = {}
        for pb in self.playbooks:
            for g in pb.gates:
                self._add(g, pb)
        for pb in self.playbooks:
            names = []
            for ref in pb.when.refs:
                if isinstance(ref, str):
                    if ref not in self._gates:
                        if ref not in self.registry:
                            raise KeyError(f"playbook {pb.name}: unknown gate {ref!r}")
                        self._gates[ref] = self.registry.get(ref)
                    names.append(ref)
                else:
                    self._add(ref, pb)
                    names.append(ref.name)
            self._refs[pb.name] = names
        self._state = {pb.name: _State() for pb in self.playbooks}

    def _add(self, g: GateBase, pb: Playbook) -> None:
        if g.name not in self.registry:
            self.registry.add(g, Provenance(source="playbook", playbook=pb.name))
        self._gates[g.name] = g

    @property
    def gates(self) -> list[GateBase]:
        return list(self._gates.values())

    def in_scope(self, pb: Playbook, ctx: RunContext) -> bool:
        sc = pb.when.scope
        if sc.rollout_step is not None and ctx.rollout_step not in sc.rollout_step:
            return False
        if sc.bundle is not None:
            bundle = ctx.canary_bundle if sc.slot == "standby" else ctx.active_bundle
            if bundle is None or not fnmatch.fnmatchcase(bundle, sc.bundle):
                return False
        return not (sc.slot == "standby" and ctx.canary_bundle is None and sc.rollout_step is None
                    and ctx.rollout_step is None)

    def idle(self, statuses: Mapping[str, Status], ctx: RunContext) -> bool:
        """Would `step` on these gate statuses fire nothing and start no streak or inconclusive timer?

        True lets the steady-state loop skip a cycle's decide: after a step that saw an idle set,
        every streak is zero, so skipping further idle sets changes nothing.
        """
        for pb in self.playbooks:
            if not self.in_scope(pb, ctx):  # step only resets it
                continue
            status = combine([statuses[n] for n in self._refs[pb.name] if n in statuses], pb.when.mode)
            if status == "fail" or (status == "inconclusive" and pb.limits.on_inconclusive_for is not None):
                return False
        return True

    def step(self, verdicts: Iterable[Verdict], ctx: RunContext) -> list[Firing]:
        by = {v.gate: v for v in verdicts}
        out: list[Firing] = []
        for pb in self.playbooks:
            st = self._state[pb.name]
            if not self.in_scope(pb, ctx):
                st.streak, st.bad_since, st.inconclusive_since = 0, None, None
                continue
            vs = [by[n] for n in self._refs[pb.name] if n in by]
            status = combine([v.status for v in vs], pb.when.mode)
            now = ctx.now
            if status == "fail":
                st.streak += 1
                st.bad_since = now if st.bad_since is None else st.bad_since
                st.inconclusive_since = None
                held = (st.streak >= pb.when.for_count) if pb.when.for_count is not None \
                    else (now - st.bad_since >= pb.when.for_seconds)  # type: ignore[operator]
                if held:
                    out.append(self._fire(pb, st, now, "fail", list(pb.then), [v for v in vs if v.status == "fail"]))
                continue
            st.streak, st.bad_since = 0, None
            inc = pb.limits.on_inconclusive_for
            if status == "inconclusive":
                st.inconclusive_since = now if st.inconclusive_since is None else st.inconclusive_since
                if inc is not None and now - st.inconclusive_since >= inc.after:
                    out.append(self._fire(pb, st, now, "inconclusive", list(inc.then),
                                          [v for v in vs if v.status == "inconclusive"]))
                    st.inconclusive_since = None
            else:
                st.inconclusive_since = None
        return out

    def _fire(self, pb: Playbook, st: _State, now: float, trigger: Literal["fail", "inconclusive"],
              actions: list[Any], evidence: list[Verdict]) -> Firing:
        while st.fired and st.fired[0] <= now - 3600:
            st.fired.popleft()
        suppressed = None
        if st.last_fired is not None and now - st.last_fired < pb.limits.cooldown:
            suppressed = f"cooldown: last fired {now - st.last_fired:.1f}s ago < {pb.limits.cooldown:g}s"
        elif len(st.fired) >= pb.limits.max_actions_per_hour:
            suppressed = f"anti-flap: {len(st.fired)} firings in the last hour"
        if suppressed is None:
            st.last_fired = now
            st.fired.append(now)
            st.streak, st.bad_since = 0, None
        return Firing(ts=now, playbook=pb.name, version=pb.version, priority=pb.priority, trigger=trigger,
                      actions=actions, suppressed=suppressed, evidence=evidence)


def combine(statuses: Sequence[Status], mode: Literal["any", "all"]) -> Status:
    """any: one failure is enough; all: every gate must fail. Missing data never counts as pass."""
    if not statuses:
        return "inconclusive"
    if mode == "any":
        if "fail" in statuses:
            return "fail"
        return "inconclusive" if "inconclusive" in statuses else "pass"
    if all(s == "fail" for s in statuses):
        return "fail"
    return "pass" if "pass" in statuses else "inconclusive"


# ---------------- backtest ----------------

class BacktestReport(BaseModel):
    recording: str
    start: float
    end: float
    step_s: float
    evaluations: int
    sim_seconds: float
    wall_seconds: float
    speedup: float
    firings: list[Firing] = Field(description="every action set that would have fired, with its evidence")
    suppressed: dict[str, int] = Field(description="per playbook: firings held back by cooldown / anti-flap")
    rollouts: list[dict[str, Any]]


def rollouts_in(reader: TelemetryReader) -> list[tuple[float, str]]:
    """(start, bundle) of every bundle seen on the standby slot: from rollout events when recorded,
    else the first standby request of each bundle."""
    ev = reader.read_arrow("SELECT ts, attrs FROM events WHERE kind IN ('rollout.start', 'deploy') ORDER BY ts")
    found = []
    for ts, attrs in zip(ev.column("ts").to_pylist(), ev.column("attrs").to_pylist(), strict=True):
        a = json.loads(attrs) if isinstance(attrs, str) else (attrs or {})
        if a.get("bundle"):
            found.append((float(ts), str(a["bundle"])))
    t = reader.read_arrow("SELECT bundle, min(ts) AS t FROM requests WHERE slot = 'standby' GROUP BY bundle ORDER BY t")
    seen = [(float(ts), b) for b, ts in zip(t.column("bundle").to_pylist(), t.column("t").to_pylist(), strict=True)]
    names = {b for _, b in seen}
    if found and all(b in names for _, b in found):  # events name bundles as the requests do
        return found
    return seen


def active_bundles(reader: TelemetryReader) -> list[tuple[float, str]]:
    t = reader.read_arrow("SELECT bundle, min(ts) AS t FROM requests WHERE slot = 'active' GROUP BY bundle ORDER BY t")
    return [(float(ts), b) for b, ts in zip(t.column("bundle").to_pylist(), t.column("t").to_pylist(), strict=True)]


def backtest(playbooks: Sequence[Playbook], reader: TelemetryReader, *, start: float, end: float,
             step_s: float = 1.0, clock: SimClock | None = None, name: str = "",
             progress: Callable[[float], None] | None = None) -> BacktestReport:
    """Evaluate every gate the playbooks need at each tick of a simulated clock over [start, end]."""
    import time

    clock = clock or SimClock(start)
    runner = PlaybookRunner(playbooks)
    engine = GateEngine(reader, clock)
    rollouts, actives = rollouts_in(reader), active_bundles(reader)
    firings: list[Firing] = []
    t0 = time.perf_counter()
    n = 0
    now = start
    while now <= end + 1e-9:
        if clock.time() < now:
            clock.advance(now - clock.time())
        started = [r for r in rollouts if r[0] <= now]
        rstart, canary_bundle = started[-1] if started else (None, None)
        act = [b for t, b in actives if t <= now]
        verdicts = engine.evaluate(runner.gates, now, rollout_start=rstart, canary_bundle=canary_bundle)
        firings += runner.step(verdicts, RunContext(now, None, act[-1] if act else None, canary_bundle))
        n += 1
        if progress:
            progress(now)
        now = start + n * step_s
    wall = time.perf_counter() - t0
    return BacktestReport(recording=name, start=start, end=end, step_s=step_s, evaluations=n,
                          sim_seconds=end - start, wall_seconds=wall,
                          speedup=(end - start) / wall if wall > 0 else 0.0,
                          firings=[f for f in firings if f.suppressed is None],
                          suppressed={p: sum(1 for f in firings if f.suppressed and f.playbook == p)
                                      for p in sorted({f.playbook for f in firings if f.suppressed})},
                          rollouts=[{"start": t, "bundle": b} for t, b in rollouts])
