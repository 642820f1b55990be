"""Playbook lint: the checks a schema cannot make (unknown gates and metrics, impossible windows,
duplicate names, actions that make no sense in the playbook's scope).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from samantha.core.validated_yaml import (
    Loc,
    Problem,
    field_path,
    locate,
)
from samantha.gates.registry import KNOWN_METRICS, GateRegistry
from samantha.gates.spec import (
    DriftGate,
    GateBase,
    SequentialGate,
    StalenessGate,
    reads_probes,
)
from samantha.playbooks.model import Loaded, Playbook, load_file

_NO_PROBES = ("gate {!r} judges the standby's probe mirrors, and this Cube makes none (twin.probe_percent: 0): "
              "the probe it refers to does not exist")
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
         raw_horizon_s: float = 3600.0, probes: bool = True) -> tuple[list[Loaded], list[Problem]]:
    """Every problem in every file, at once. `probes`: the Cube mirrors requests to an idle standby
    (`twin.probe_percent` > 0); without them a gate that judges the standby's probes never has data."""
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
                elif not probes and ref in registry and ref not in local and reads_probes(registry.get(ref)):
                    problems.append(_at(ld, loc, _NO_PROBES.format(ref)))
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
            if not probes and reads_probes(g):
                problems.append(_at(ld, loc, _NO_PROBES.format(g.name)))
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


