"""Rollout-policy lint: what the schema cannot check, each problem at file:line:column.

- every gate a policy names exists (an unknown one would fail the first step judged, mid-rollout);
- the margins agree: early success may pass a step when the canary is shown within `margin_odds` of the
  incumbent, so that margin must stay below the smallest regression the blocking median-latency gate is
  built to catch (its null odds times the first alternative of its mixture); otherwise a canary that gate
  exists to abort could be promoted early;
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from samantha.core.validated_yaml import (
    DocumentError,
    Loc,
    Problem,
    field_path,
    locate,
    parse_yaml,
    problems_from_validation,
)
from samantha.gates.registry import GateRegistry
from samantha.gates.rollout_policy import RolloutPolicy
from samantha.gates.sequential import ODDS_GRID
from samantha.gates.spec import SequentialGate


def lint_policy_file(path: str | Path, registry: GateRegistry | None = None) -> tuple[RolloutPolicy | None, list[Problem]]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        return None, [Problem(str(p), 0, 0, "", f"cannot read: {e}")]
    return lint_policy_text(text, str(p), registry)


def lint_policy_text(text: str, source: str, registry: GateRegistry | None = None) -> tuple[RolloutPolicy | None, list[Problem]]:
    try:
        data, marks = parse_yaml(text, source)
    except DocumentError as e:
        return None, e.problems
    try:
        policy = RolloutPolicy.model_validate(data if data is not None else {})
    except ValidationError as e:
        return None, problems_from_validation(e, source, marks)
    out = check_policy(policy, registry or GateRegistry.with_builtins())
    problems = [Problem(source, *locate(marks, loc), field_path(loc), why) for loc, why in out]
    return policy, sorted(problems, key=lambda pr: (pr.line, pr.column))


def check_policy(policy: RolloutPolicy, reg: GateRegistry) -> list[tuple[Loc, str]]:
    """The checks on a validated policy (also one a signed policy module carries): (field location, reason)."""
    out: list[tuple[Loc, str]] = []
    refs: list[tuple[Loc, Any]] = [(("gates", i), r) for i, r in enumerate(policy.gates)]
    refs += [(("steps", k, "gates", i), r) for k, s in enumerate(policy.steps) for i, r in enumerate(s.gates)]
    for loc, r in refs:
        if isinstance(r, str) and r not in reg:
            out.append((loc, f"unknown gate {r!r}"))
    if not out:
        out += _margin_problems(policy, reg)
    return out


def _margin_problems(policy: RolloutPolicy, reg: GateRegistry) -> list[tuple[Loc, str]]:
    es = policy.early_success
    if not es.enabled:
        return []
    channel = "shadow" if policy.shadow.enabled else "live"
    out: list[tuple[Loc, str]] = []
    for g in policy.step_gates(0, reg):
        if (isinstance(g, SequentialGate) and g.signal == "latency" and g.method != "cusum" and g.quantile == 0.5
                and g.channel in (channel, "all")):
            smallest = g.null_odds * min(ODDS_GRID)
            if es.margin_odds >= smallest:
                out.append((("early_success", "margin_odds"),
                            f"margin_odds {es.margin_odds:g} is not below {smallest:g}, the smallest latency "
                            f"regression gate {g.name!r} is built to catch (null odds {g.null_odds:g} x "
                            f"{min(ODDS_GRID):g}) on the {channel} channel: a canary it exists to abort could "
                            "pass a step early"))
    return out


def load_policy_file(path: str | Path, registry: GateRegistry | None = None) -> RolloutPolicy:
    """A linted policy, or DocumentError listing every problem."""
    policy, problems = lint_policy_file(path, registry)
    if problems or policy is None:
        raise DocumentError(problems)
    return policy
