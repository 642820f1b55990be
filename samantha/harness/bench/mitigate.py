"""`samantha bench mitigate`: time to mitigate hard faults, time to detect soft ones, false actions.

Every number comes from real scenario runs: a fresh twin with a fresh `samantha run` daemon beside
it per run, the report measured from the daemon's DuckDB file (see samantha/harness/scenario_run.py). A case Samantha never
mitigates (or detects) counts as infinitely slow in the percentiles, so a miss cannot hide.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from samantha.harness.scenario_run import run_scenario
from samantha.twin.scenario import Scenario, cube_blockers, load_scenario

SCENARIOS = Path(__file__).resolve().parents[3] / "scenarios"
HARD = ("rollout-bad-canary", "rollout-crash-canary", "active-degradation", "active-latency",
        "rollout-leaky-canary", "rollout-cpu-canary")
HOST = "host-slowdown"  # both slots slow: the target is no flip and one alert
SOFT = ("rollout-slow-canary", "rollout-divergent-canary", "input-drift")
FAULT_FREE = ("rollout-good", "no-fault-control")


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    v = float(np.percentile(np.array(values, dtype=float), q, method="higher"))
    return None if math.isinf(v) else round(v, 3)


def _fault_free_s(sc: Scenario, out: dict[str, Any]) -> float:
    busy = sum(((f.get("cleared_s") or sc.duration_s) - f["onset_s"]) for f in out["faults"])
    return max(0.0, sc.duration_s - busy)


def run_mitigate_bench(*, repeats: int = 3, quick: bool = False, fault_free_minutes: float = 30.0,
                       cube: str = "twin", only: set[str] | None = None,
                       log: Callable[[str], None] = lambda m: None) -> dict[str, Any]:
    """`cube`: "twin" (toy slots), or "triton" (real tritonservers behind the Cube runtime; the scenarios it
    cannot apply are listed under `skipped` with the field and the reason, and the LLM-on pass runs on the
    twin only: it measures the daemon's triage, not the Cube). `only`: these scenario names alone (a subset
    for tests and quick looks; the others are neither run nor listed)."""
    if quick:
        repeats, fault_free_minutes = 1, 2.0
    started = time.time()
    hard: dict[str, list[float]] = {n: [] for n in HARD}
    soft: dict[str, list[float]] = {n: [] for n in SOFT}
    false_actions, free_s, runs = 0, 0.0, 0
    false_list: list[dict[str, Any]] = []
    footprints: list[dict[str, Any]] = []

    llm_pass = cube == "twin"
    hard_llm: dict[str, list[float]] = {n: [] for n in HARD} if llm_pass else {}
    names = [n for n in (HOST, *HARD, *SOFT, *FAULT_FREE) if only is None or n in only]
    skipped = [{"scenario": n, "field": f, "reason": r} for n in names
               for f, r in cube_blockers(load_scenario(SCENARIOS / f"{n}.yaml"), cube)]
    blocked = {s["scenario"] for s in skipped} | {n for n in (HOST, *HARD, *SOFT, *FAULT_FREE) if n not in names}
    free_false: dict[str, int] = {n: 0 for n in FAULT_FREE if n not in blocked}

    def run(name: str, llm: bool = False) -> tuple[Scenario, dict[str, Any]]:
        nonlocal false_actions, free_s, runs
        sc = load_scenario(SCENARIOS / f"{name}.yaml")
        out = run_scenario(sc, llm=llm, cube=cube)
        runs += 1
        false_actions += out["false_actions"]
        if name in free_false:
            free_false[name] += out["false_actions"]
        false_list.extend({"scenario": name, **a} for a in out.get("false_action_list", []))
        free_s += _fault_free_s(sc, out)
        if out.get("daemon") and sc.traffic.rps == 200 and not llm:
            footprints.append(out["daemon"])
        return sc, out

    def ttm(out: dict[str, Any]) -> float:
        ttms = [f["ttm_s"] for f in out["faults"]]
        return math.inf if not ttms or any(t is None for t in ttms) else max(ttms)

    host: list[dict[str, int]] = []
    for cases in (hard, hard_llm, soft):
        for n in blocked & set(cases):
            del cases[n]
    for _ in range(repeats):
        if HOST not in blocked:
            _, out = run(HOST)
            kinds = [a["kind"] for a in out["actions"]]
            host.append({"flips": kinds.count("flip"), "alerts": kinds.count("alert")})
            log(f"{HOST}: {host[-1]}")
        for name in hard:  # each hard case with the LLM triage off, then on: the fast path must not change
            hard[name].append(ttm(run(name)[1]))
            if llm_pass:
                hard_llm[name].append(ttm(run(name, llm=True)[1]))
            log(f"{name}: ttm {hard[name][-1]} (LLM on: {hard_llm[name][-1] if llm_pass else 'not run'})")
        for name in soft:
            _, out = run(name)
            ttds = [f["ttd_s"] for f in out["faults"]]
            soft[name].append(math.inf if not ttds or any(t is None for t in ttds) else max(ttds))
            log(f"{name}: ttd {soft[name][-1]}")
    k, free_names = 0, list(free_false)
    # on a real Cube each fault-free scenario runs at least once: their false actions are a target of their own
    at_least = len(free_names) if cube != "twin" else 0
    while free_names and (free_s < fault_free_minutes * 60 or k < at_least) and k < 1000:
        name = free_names[k % len(free_names)]
        run(name)
        k += 1
        log(f"{name}: fault-free {free_s / 60:.1f} min, false actions {false_actions}")
    hard_all = [v for vs in hard.values() for v in vs]
    hard_llm_all = [v for vs in hard_llm.values() for v in vs]
    soft_all = [v for vs in soft.values() for v in vs]

    def show(d: dict[str, list[float]]) -> dict[str, list[float | None]]:
        return {n: [None if math.isinf(x) else x for x in vs] for n, vs in d.items()}

    return {
        "hard_ttm_p50_s": _pct(hard_all, 50), "hard_ttm_p95_s": _pct(hard_all, 95),
        "hard_missed": sum(math.isinf(v) for v in hard_all), "hard_cases": show(hard),
        "hard_ttm_llm_on_p50_s": _pct(hard_llm_all, 50), "hard_ttm_llm_on_p95_s": _pct(hard_llm_all, 95),
        "hard_llm_on_missed": sum(math.isinf(v) for v in hard_llm_all), "hard_cases_llm_on": show(hard_llm),
        "soft_ttd_p50_s": _pct(soft_all, 50), "soft_missed": sum(math.isinf(v) for v in soft_all),
        "soft_cases": show(soft),
        "host_slowdown": host, "host_slowdown_flips": sum(h["flips"] for h in host),
        "false_actions": false_actions, "fault_free_false_actions": free_false, "fault_free_minutes": round(free_s / 60, 2),
        "onset": "a bad bundle's fault starts at its first request (plus its crash delay), not at the deploy "
                 "event: loading it takes time during which it serves nothing",
        "fault_free_how": f"{len(FAULT_FREE)} fault-free scenarios ({', '.join(FAULT_FREE)}) run in sequence, each on "
                          "a fresh twin, plus the fault-free parts of every fault scenario",
        "false_action_list": false_list[:20],
        "daemon_rss_mb": max((f["rss_mb"] for f in footprints), default=None),
        "daemon_uss_mb": max((f["uss_mb"] for f in footprints), default=None),
        "daemon_cpu_pct": _pct([f["cpu_pct"] for f in footprints if f.get("cpu_pct") is not None], 50),
        "daemon_cpu_pct_max": max((f["cpu_pct"] for f in footprints if f.get("cpu_pct") is not None), default=None),
        "daemon_note": f"`samantha run` beside each fresh twin (shipped playbooks, defaults, no LLM loaded); over "
                       f"{len(footprints)} runs at 200 rps: RSS/USS = the largest at the end of a run, CPU = median "
                       "(and max) share of one core over each run's timeline",
        "targets": {"hard_ttm_p95_s": 1.0, "active-latency_ttm_s": 5.0, "rollout-leaky-canary_ttm_s": 120,
                    "host_slowdown": {"flips": 0, "alerts": 1}, "soft_ttd_p50_s": 30.0, "false_actions": 0, "daemon_rss_mb": 150,
                    "daemon_cpu_pct": 10},
        "cube": cube, "skipped": skipped,
        "llm_on_pass": llm_pass or "not run on a real Cube: it measures the daemon's triage, which the twin covers",
        "repeats": repeats, "runs": runs, "quick": quick, "wall_s": round(time.time() - started, 1),
    }
