"""The playbook runner: a stream of verdicts in, firings out (deterministic, no LLM), with for-windows,
cooldowns and anti-flap limits.
"""

from __future__ import annotations

import fnmatch
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from samantha.gates.actions import Action
from samantha.gates.registry import GateRegistry, Provenance
from samantha.gates.spec import (
    GateBase,
)
from samantha.gates.verdict import Status, Verdict
from samantha.playbooks.model import Playbook, StepRef


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


