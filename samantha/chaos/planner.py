"""Experiment planning, Monocle-style: generated from the Cube's dependency map, ranked, deduplicated.

Dependency map of a Cube: router -> proxy -> slot for the active path and for the
standby path (the fallback and rollback target), the router's input stage, the
flip (rollback) path, and the host's resources. For each dependency the planner
generates a failure experiment and a latency-just-under-the-timeout experiment;
plus input-robustness experiments, rollback-readiness drills and resource stress.

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

from samantha.chaos.catalog import KINDS, PROFILES, FaultError, blast_radius, intensity_params, parse_fault
from samantha.chaos.proposal import Proposal

log = logging.getLogger(__name__)
DAY_S = 86400.0
# incident probable cause -> the fault kinds that rehearse it
CAUSE_KINDS = {"network_fault": ("latency", "timeout", "reset_peer", "bandwidth", "http_error"),
               "slot_down": ("kill_slot", "sigstop", "rollback_drill"),
               "resource_exhaustion": ("cpu_burn", "memory_hog", "disk_pressure"),
               "input_drift": ("input_noise",), "bad_bundle": ("rollback_drill",)}


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
    """Every candidate from the map, deterministic."""
    under_ms = int(min(10_000, max(1, upstream_timeout_s * 1000 * 0.9)))  # just under the router's timeout
    out: list[Proposal] = []

    def add(kind: str, target: str, params: dict[str, Any], edge: str, why: str) -> None:
        out.append(Proposal(kind=kind, target=target, params=params, source="planner", dependency=edge,
                            title=f"{kind} on {target}", rationale=why))

    for e in dependency_map():
        if e.role in ("active", "standby"):
            small = 1.0 if e.role == "standby" else 0.05
            add("http_error", e.role, {"toxicity": small, "duration_s": 20.0}, e.name,
                f"failure of the {e.role} path: does the fallback engage, do the gates see it?")
            add("reset_peer", e.role, {"toxicity": small, "duration_s": 20.0}, e.name,
                f"connection resets on the {e.role} path")
            add("latency", e.role, {"latency_ms": under_ms, "jitter_ms": 0, "toxicity": small, "duration_s": 20.0},
                e.name, f"latency just under the {upstream_timeout_s:g} s timeout on the {e.role} path")
            add("latency", e.role, {"latency_ms": 200, "jitter_ms": 20, "toxicity": small, "duration_s": 20.0},
                e.name, f"moderate latency on the {e.role} path: which gate sees it, how fast")
            add("sigstop", e.role, {"duration_s": 3.0}, e.name, f"the {e.role} slot hangs")
            add("kill_slot", e.role, {"duration_s": 20.0, "restart_timeout_s": 15.0}, e.name,
                f"the {e.role} slot crashes: is it restarted?")
        elif e.role == "router":
            add("input_noise", "router", {"fraction": 0.02, "sigma": 1.0, "duration_s": 20.0}, e.name,
                "input robustness: mild sensor noise")
            add("input_noise", "router", {"fraction": 0.05, "sigma": 3.0, "duration_s": 20.0}, e.name,
                "input robustness: strong noise on a small share")
        elif e.role == "cube":
            add("rollback_drill", "cube", {"hold_s": 2.0, "duration_s": 10.0}, e.name,
                "rollback readiness: flip to the standby and back")
        else:
            add("cpu_burn", "host", {"cores": 0.5, "duration_s": 20.0}, e.name, "CPU contention")
            add("memory_hog", "host", {"mb": 128, "duration_s": 20.0}, e.name, "memory pressure")
            add("disk_pressure", "host", {"mb": 64, "duration_s": 20.0}, e.name, "disk pressure near the store")
    return out


def score(p: Proposal, *, now: float, last_run: dict[tuple[str, str], float], incident_causes: list[str],
          standby_weight_pct: float = 0.0) -> Proposal:
    """Value and risk in [0, ~3]; deterministic."""
    since = now - last_run.get((str(p.kind), str(p.target)), now - 30 * DAY_S)
    value = min(1.0, since / DAY_S)
    value += 0.5 * sum(1 for c in incident_causes if p.kind in CAUSE_KINDS.get(c, ()))
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
        if a.fault not in KINDS or a.target not in PROFILES[a.fault].targets:
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
