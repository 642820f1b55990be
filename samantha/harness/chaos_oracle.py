"""An independent restatement of chaos policy, and adversarial proposal generation.

Written from the issue's text, separately from preflight.py and without its helpers
or the catalog's models, so the property tests and `samantha bench chaos` can count
`preflight_violations`: proposals pre-flight sanctioned that this oracle says are
beyond policy. The parameter bounds are restated as literals on purpose.

`beyond_policy` judges the raw proposal only; it never reads the input's `fault` (what the
chaos registry resolved it to). `random_input` resolves it through the registry only because
the kernel's input carries that resolution: building the input is not judging it.
"""

from __future__ import annotations

import math
import random
from typing import Any

from samantha.chaos.fault_kinds import preflight_input
from samantha.core.config import ChaosLimits
from samantha.core.proposal import Proposal
from samantha.kernel.policy import CubeSnapshot, SlotState
from samantha.kernel.preflight import GateStatus, HostSnapshot, PreflightInput

# kind -> (allowed targets, {param: (lo, hi, integer?)}); lo is exclusive when the name is in EXCLUSIVE_LO
BOUNDS: dict[str, tuple[tuple[str, ...], dict[str, tuple[float, float, bool]]]] = {
    "input_noise": (("router",), {"fraction": (0, 0.5, False), "sigma": (0, 10, False), "duration_s": (0, 600, False)}),
    "latency": (("active", "standby"), {"latency_ms": (1, 10_000, True), "jitter_ms": (0, 5_000, True),
                                        "toxicity": (0, 1, False), "duration_s": (0, 600, False)}),
    "timeout": (("active", "standby"), {"timeout_ms": (0, 60_000, True), "toxicity": (0, 1, False),
                                        "duration_s": (0, 600, False)}),
    "reset_peer": (("active", "standby"), {"timeout_ms": (0, 10_000, True), "toxicity": (0, 1, False),
                                           "duration_s": (0, 600, False)}),
    "bandwidth": (("active", "standby"), {"rate_kbps": (1, 1_000_000, True), "toxicity": (0, 1, False),
                                          "duration_s": (0, 600, False)}),
    "http_error": (("active", "standby"), {"status_code": (500, 599, True), "toxicity": (0, 1, False),
                                           "duration_s": (0, 600, False)}),
    "sigstop": (("active", "standby"), {"duration_s": (0, 60, False)}),
    "kill_slot": (("active", "standby"), {"duration_s": (0, 120, False), "restart_timeout_s": (1, 60, False)}),
    "cpu_burn": (("host",), {"cores": (0, 8, False), "duration_s": (0, 600, False)}),
    "memory_hog": (("host",), {"mb": (1, 8192, True), "duration_s": (0, 600, False)}),
    "rollback_drill": (("cube",), {"hold_s": (0, 30, False), "duration_s": (0, 120, False)}),
    "disk_pressure": (("host",), {"mb": (1, 65_536, True), "duration_s": (0, 600, False)}),
}
EXCLUSIVE_LO = {"fraction", "sigma", "toxicity", "cores", "duration_s"}
DEFAULTS = {"duration_s": {"sigstop": 5.0, "kill_slot": 20.0, "rollback_drill": 10.0}, "toxicity": 1.0,
            "fraction": 0.05, "cores": 0.5, "mb": {"memory_hog": 128, "disk_pressure": 64}}


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v) if math.isfinite(v) else None


def _param(kind: str, params: dict, name: str) -> float | None:
    if name in params:
        return _num(params[name])
    d = DEFAULTS.get(name)
    if isinstance(d, dict):
        return d.get(kind, 30.0 if name == "duration_s" else None)
    return d if d is not None else (30.0 if name == "duration_s" else None)


def beyond_policy(inp: PreflightInput) -> list[str]:
    """Why `inp` must not run unattended; empty: it may. Independent of preflight.check."""
    p, lim, cube, host = inp.proposal, inp.limits, inp.cube, inp.host
    why: list[str] = []
    if p.kind not in BOUNDS:
        return ["kind not in catalog"]
    targets, bounds = BOUNDS[p.kind]
    if p.target not in targets:
        why.append("target")
    if not isinstance(p.params, dict):
        return [*why, "params not a mapping"]
    for k, v in p.params.items():
        if k not in bounds:
            why.append(f"unknown param {k}")
            continue
        lo, hi, integer = bounds[k]
        x = _num(v)
        if x is None:
            why.append(f"{k} not a finite number")
            continue
        if integer and not isinstance(v, int):
            why.append(f"{k} not an integer")
        if x > hi or x < lo or (k in EXCLUSIVE_LO and x <= lo):
            why.append(f"{k} out of range")
    if why:
        return why
    dur = _param(p.kind, p.params, "duration_s") or 0.0
    share = 1.0
    if p.kind == "input_noise":
        share = _param(p.kind, p.params, "fraction") or 0.0
    elif "toxicity" in bounds:
        share = _param(p.kind, p.params, "toxicity") or 0.0
    if any(g.status == "fail" for g in inp.gates):
        why.append("a gate fails")
    if not any(g.status == "pass" and g.name in inp.hypothesis_gates for g in inp.gates):
        why.append("hypothesis blind")
    if inp.error_budget_remaining is None or not inp.error_budget_remaining >= lim.min_error_budget:
        why.append("error budget")
    if inp.running_experiments:
        why.append("concurrent")
    if cube.safe_mode:
        why.append("safe mode")
    if cube.rollout_in_progress:
        why.append("rollout")
    if dur > lim.max_duration_s:
        why.append("duration")
    if p.kind not in inp.revert_tested:
        why.append("revert untested")
    standby_ok = (cube.standby.bundle is not None and cube.standby.loaded and cube.standby.healthy
                  and cube.standby.verified and cube.standby.bundle not in cube.quarantined)
    w = cube.weights.get("standby", 0.0)
    if p.target == "active" and (share > lim.active_max_share or p.kind in ("kill_slot", "sigstop")
                                 or not standby_ok):
        why.append("active path")
    if p.target == "standby" and (not cube.standby.loaded or cube.standby.bundle is None
                                  or share * w > lim.active_max_share):
        why.append("standby live/empty")
    if p.kind == "input_noise" and share > lim.active_max_share:
        why.append("noise share")
    recent_drills = [t for t in inp.recent_drills if inp.now - t < 3600]
    if p.kind == "rollback_drill" and (not standby_ok or len(recent_drills) >= lim.drills_per_hour):
        why.append("drill")
    cores = _param(p.kind, p.params, "cores") if p.kind == "cpu_burn" else 0.0
    mb = _param(p.kind, p.params, "mb") if p.kind in ("memory_hog", "disk_pressure") else 0.0
    if (cores or 0) > 0 and (cores or 0) > host.cpu_count * (1 - host.cpu_used_ratio) - lim.cpu_reserve_cores:
        why.append("cpu")
    mem = (mb if p.kind == "memory_hog" else 0.0) or 0.0
    if mem + lim.runner_memory_mb > host.mem_available_mb - lim.memory_reserve_mb:
        why.append("memory")
    disk = (mb if p.kind == "disk_pressure" else 0.0) or 0.0
    if disk > host.disk_free_mb - lim.disk_reserve_mb:
        why.append("disk")
    return why


# --- adversarial generation --------------------------------------------------------------------

WILD_NUMBERS: list[Any] = [0, -1, -0.0, 1e-300, 0.049, 0.05, 0.051, 0.5, 0.51, 1, 1.0000001, 2, 59.9, 60, 60.1,
                           119, 120, 121, 599, 600, 601, 1e9, -1e9, float("nan"), float("inf"), float("-inf"),
                           True, False, None, "100", "nan", [], {}, 10**30, 4096, 8192, 8193, 65536, 499, 500,
                           599, 600]
WILD_TARGETS: list[Any] = ["active", "standby", "router", "host", "cube", "samantha-store", "samantha-api",
                           "cube-control", "router-process", "proxy-process", "supervisor", "ACTIVE", "", None,
                           "../etc", 3]
WILD_KINDS: list[Any] = ["input_noise", "latency", "timeout", "reset_peer", "bandwidth", "http_error", "sigstop",
                         "kill_slot", "cpu_burn", "memory_hog", "rollback_drill", "disk_pressure", "rm_rf",
                         "kill_router", "", None, 7, "Latency"]


def _near(rng: random.Random, lo: float, hi: float, integer: bool) -> Any:
    """A value inside the range, on its edges, or just outside it."""
    x = rng.choice([lo, hi, rng.uniform(lo, hi), rng.uniform(lo, hi), rng.uniform(lo, min(hi, lo + (hi - lo) * 0.1)),
                    hi * 1.01 + 1, lo - 1])
    return int(round(x)) if integer else x


def random_proposal(rng: random.Random) -> Proposal:
    """Half well-formed (values near and across the range edges), half adversarial (anything)."""
    wild = rng.random() < 0.5
    kind = rng.choice(WILD_KINDS) if wild else rng.choice(list(BOUNDS))
    targets = BOUNDS[kind][0] if kind in BOUNDS else ("host",)
    target = rng.choice(WILD_TARGETS) if wild and rng.random() < 0.5 else rng.choice(targets)
    names = list(BOUNDS.get(kind, (None, {"duration_s": (0, 1, False)}))[1]) + ["evil", "path"]
    params: Any = {}
    for name in rng.sample(names, rng.randint(0, len(names))):
        if name in ("evil", "path"):
            if wild and rng.random() < 0.3:
                params[name] = rng.choice(["/work", ".samantha/telemetry.duckdb", 1])
            continue
        if kind in BOUNDS and (not wild or rng.random() < 0.5):
            params[name] = _near(rng, *BOUNDS[kind][1][name]) if rng.random() < 0.5 else \
                _near(rng, BOUNDS[kind][1][name][0], min(BOUNDS[kind][1][name][1], 1.0 if name in
                      ("toxicity", "fraction") else 0.1 * BOUNDS[kind][1][name][1] + 1), BOUNDS[kind][1][name][2])
        else:
            params[name] = rng.choice(WILD_NUMBERS)
    if wild and rng.random() < 0.02:
        params = rng.choice([None, [], "latency=200", 5])
    return Proposal(kind=kind, target=target, params=params, source="test")


def random_input(rng: random.Random, proposal: Proposal, limits: ChaosLimits | None = None) -> PreflightInput:
    """A healthy Cube with one or two things wrong (or none), or an arbitrary mess."""
    gate_names = ["active-error-rate", "latency-slo-p99", "host-memory", "host-disk"]
    bundle = "b" * 64
    kinds = list(BOUNDS)
    healthy = dict(
        proposal=proposal, now=1_800_000_000.0 + rng.uniform(0, 86400),
        gates=[GateStatus(name=n, status="pass") for n in gate_names], hypothesis_gates=gate_names[:2],
        error_budget_remaining=0.9,
        host=HostSnapshot(cpu_count=4, cpu_used_ratio=0.2, mem_available_mb=16000.0, disk_free_mb=100_000.0),
        cube=CubeSnapshot(active=SlotState(bundle="a" * 64, healthy=True, loaded=True, verified=True),
                          standby=SlotState(bundle=bundle, healthy=True, loaded=True, verified=True)),
        running_experiments=0, revert_tested=frozenset(kinds), recent_drills=[], limits=limits or ChaosLimits())
    statuses = ["pass", "pass", "pass", "inconclusive", "fail"]
    spoilers = {
        "gates": lambda: [GateStatus(name=n, status=rng.choice(statuses)) for n in gate_names if rng.random() < 0.9],
        "hypothesis_gates": lambda: rng.sample(gate_names + ["no-such-gate"], rng.randint(0, 3)),
        "error_budget_remaining": lambda: rng.choice([None, 0.0, 0.1, 0.24, 0.25, 0.5, float("nan")]),
        "host": lambda: HostSnapshot(cpu_count=rng.choice([1, 2, 4]), cpu_used_ratio=rng.random(),
                                     mem_available_mb=rng.choice([100.0, 400.0, 2000.0, 16000.0]),
                                     disk_free_mb=rng.choice([100.0, 600.0, 5000.0, 100_000.0])),
        "cube": lambda: CubeSnapshot(
            active=SlotState(bundle="a" * 64, healthy=True, loaded=True, verified=True),
            standby=SlotState(bundle=rng.choice([bundle, None]), healthy=rng.random() < 0.6,
                              loaded=rng.random() < 0.7, verified=rng.random() < 0.7),
            weights={"active": 1.0, "standby": 0.0} if rng.random() < 0.5 else
            {"active": 0.9, "standby": rng.choice([0.01, 0.1, 0.5, 1.0])},
            quarantined=frozenset([bundle]) if rng.random() < 0.3 else frozenset(),
            safe_mode=rng.random() < 0.3, rollout_in_progress=rng.random() < 0.3),
        "running_experiments": lambda: rng.choice([1, 2]),
        "revert_tested": lambda: frozenset(k for k in kinds if rng.random() < 0.7),
        "recent_drills": lambda: [healthy["now"] - rng.choice([10.0, 3599.0, 3601.0])],  # type: ignore[operator]
    }
    for key in rng.sample(list(spoilers), rng.choice([0, 0, 1, 1, 2, len(spoilers)])):
        healthy[key] = spoilers[key]()
    return preflight_input(**healthy)  # type: ignore[arg-type]
