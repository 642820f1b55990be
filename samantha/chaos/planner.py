"""Experiment planning, Monocle-style: generated from the Cube's dependency map, ranked, deduplicated.

Dependency map of a Cube: router -> proxy -> slot for the active path and for the
standby path (the fallback and rollback target), the router's input stage, the
flip (rollback) path, and the host's resources. Each fault kind's registry declaration
(`FaultKind.plan`) names its candidates on those edges: for each slot path a failure
experiment and a latency-just-under-the-timeout experiment; plus input-robustness
experiments, rollback-readiness drills and resource stress.

Ranking: value (how long since the path was exercised, recent incidents on it,
fallback paths that real traffic rarely exercises) minus risk (live traffic touched,
a path taken down, host resources used). Deterministic for the same inputs. The LLM
may add proposals and reorder; it cannot change a parameter outside the catalog's
ranges (they are derived from its low|medium|high intensity) nor a verdict.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from samantha.chaos.fault_kinds import REGISTRY, FaultError, blast_radius, intensity_params, parse_fault
from samantha.core.proposal import Proposal

log = logging.getLogger(__name__)
DAY_S = 86400.0


def cause_kinds() -> dict[str, tuple[str, ...]]:
    """Incident probable cause -> the fault kinds that rehearse it (each kind's `rehearses`)."""
    out: dict[str, tuple[str, ...]] = {}
    for k in REGISTRY:
        for c in k.rehearses:
            out[c] = (*out.get(c, ()), k.name)
    return out


@dataclass(frozen=True)
class Edge:
    name: str
    role: str  # target role on the map
    fallback: bool  # a path real traffic rarely exercises


def dependency_map() -> list[Edge]:
    return [Edge("router->proxy->slot (active)", "active", False),
            Edge("router->proxy->slot (standby, fallback)", "standby", True),
            Edge("router input", "router", False),
            Edge("flip (rollback path)", "cube", True),
            Edge("host resources", "host", False)]


def generate(upstream_timeout_s: float) -> list[Proposal]:
    """Every candidate every registered fault kind declares for the map's edges, deterministic."""
    edges = {e.role: e.name for e in dependency_map()}
    return [Proposal(kind=k.name, target=c.target, params=dict(c.params), source="planner", dependency=edges.get(c.target),
                     title=f"{k.name} on {c.target}", rationale=c.why)
            for k in REGISTRY for c in k.plan(upstream_timeout_s)]


def score(p: Proposal, *, now: float, last_run: dict[tuple[str, str], float], incident_causes: list[str],
          standby_weight_pct: float = 0.0) -> Proposal:
    """Value and risk in [0, ~3]; deterministic."""
    since = now - last_run.get((str(p.kind), str(p.target)), now - 30 * DAY_S)
    value = min(1.0, since / DAY_S)
    causes = cause_kinds()
    value += 0.5 * sum(1 for c in incident_causes if p.kind in causes.get(c, ()))
    edge = next((e for e in dependency_map() if e.name == p.dependency), None)
    if edge is not None and edge.fallback:
        value += 0.5
    try:
        f = parse_fault(p.kind, p.params)
        b = blast_radius(f, str(p.target), standby_weight_pct)
        risk = b.live_share + (0.5 if b.path_down and b.role == "active" else 0.0) + 0.2 * b.cpu_cores \
            + b.memory_mb / 4096 + b.disk_mb / 8192
    except (FaultError, KeyError):
        risk = 10.0
    return p.model_copy(update={"value": round(value, 4), "risk": round(risk, 4)})


def rank(props: list[Proposal]) -> list[Proposal]:
    return sorted(props, key=lambda p: (-(p.value - p.risk), p.key))


def dedup(props: list[Proposal], recent_keys: set[str]) -> tuple[list[Proposal], list[Proposal]]:
    """(kept, dropped): drop what ran recently, and repeats within the list."""
    seen, kept, dropped = set(), [], []
    for p in props:
        if p.key in recent_keys or p.key in seen:
            dropped.append(p)
        else:
            seen.add(p.key)
            kept.append(p)
    return kept, dropped


def from_llm(advice: Any) -> tuple[list[Proposal], list[str]]:
    """LLM proposals (fault, target, intensity, hypothesis) -> catalog proposals. Anything else is dropped and logged."""
    kept, dropped = [], list(getattr(advice, "dropped", []) or [])
    for a in getattr(advice, "proposals", []) or []:
        if a.fault not in REGISTRY or a.target not in REGISTRY[a.fault].targets:
            dropped.append(f"{a.fault}@{a.target}: not a catalog entry for that target")
            continue
        params = intensity_params(a.fault, a.intensity)
        try:
            parse_fault(a.fault, params)
        except FaultError as e:  # cannot happen for the shipped table; kept as the rule
            dropped.append(f"{a.fault}@{a.target}: {e}")
            continue
        kept.append(Proposal(kind=a.fault, target=a.target, params=params, source="llm",
                             title=f"{a.fault} on {a.target} ({a.intensity})", rationale=a.hypothesis))
    for d in dropped:
        log.warning("LLM chaos proposal dropped: %s", d)
    return kept, dropped


def apply_llm_ranking(props: list[Proposal], ranking: list[str]) -> list[Proposal]:
    """The LLM's order first (ids = proposal keys it knows), the rest in planner order."""
    by_key = {p.key: p for p in props}
    head = [by_key[k] for k in ranking if k in by_key]
    rest = [p for p in props if p.key not in set(ranking)]
    return head + rest
