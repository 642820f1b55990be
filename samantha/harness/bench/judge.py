"""`samantha bench judge`: how good and how fast the rollout judge is.

Statistics part (simulated clock, no sleeping): rollouts are simulated bin by bin
(0.2 s, the sequential gates' bin) from the traffic model fitted to twin telemetry,
under the default rollout policy (100% shadow scoring first when enabled, then
1/5/25/50/100 with a 300 s soak). Each bin's request and event counts are exactly
what the store's per-bin aggregation would hand the sequential gates, and the
gates' own statistics code (samantha.gates.sequential) judges them.

Speed part: 100 gates of every kind evaluated in one pass over a real TelemetryStore
holding 10M rows, compared with one bare window query in the same run.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from samantha.core.clock import SimClock
from samantha.gates import sequential as seq
from samantha.gates.registry import GateRegistry
from samantha.gates.rollout_policy import RolloutPolicy
from samantha.gates.spec import SequentialGate
from samantha.harness.bench import judge_oracle as oracle
from samantha.harness.traffic_model import KNOTS, TrafficModel, describe

FLUSH_LAG_S = 0.05  # the store's group-commit period: data is visible this long after it happens

# name -> (kind, size). Hard cases must be caught within 1 s, soft ones within 30 s (with shadow).
CASES: dict[str, tuple[str, float]] = {
    "errors_+20pp": ("errors", 0.20),
    "errors_+2pp": ("errors", 0.02),
    "errors_+0.5pp": ("errors", 0.005),
    "latency_x2": ("latency_scale", 2.0),
    "latency_p99_+20pct": ("latency_tail", 0.20),
    "divergence_5pct": ("divergence", 0.05),
}
TARGET_S = {"errors_+20pp": 1.0, "latency_x2": 1.0, "errors_+2pp": 30.0, "errors_+0.5pp": 30.0,
            "latency_p99_+20pct": 30.0, "divergence_5pct": 30.0}


def tail_stretch(lat: np.ndarray, u: np.ndarray, size: float) -> np.ndarray:
    """Slow only the tail: x1 up to the 90th percentile, rising linearly to x(1+size) at the 99th and above,
    so p99 grows by `size` while the median does not move."""
    return lat * (1.0 + size * np.clip((u - 0.90) / 0.09, 0.0, 1.0))


@dataclass
class Schedule:
    weight: np.ndarray  # standby share of live traffic per bin
    shadow: np.ndarray  # shadow mirroring on per bin
    bins: int
    phases: list[dict[str, Any]]


def schedule(policy: RolloutPolicy, rps: float, bin_s: float, shadow: bool) -> Schedule:
    phases: list[tuple[str, float, bool, float]] = []
    if shadow and policy.shadow.enabled:
        d = max(policy.shadow.min_duration, policy.shadow.min_samples / rps)
        phases.append(("shadow", 0.0, True, d))
    for s in policy.steps:
        w = s.weight / 100
        per_s = rps * (w + ((1 - w) if shadow else 0.0))
        d = max(s.min_duration, s.min_samples / per_s)
        if s.weight == 100:
            d = max(d, policy.soak)
        phases.append((f"{s.weight:g}%", w, shadow, d))
    w_l, s_l, out = [], [], []
    t = 0.0
    for name, w, sh, d in phases:
        n = math.ceil(d / bin_s)
        w_l.append(np.full(n, w))
        s_l.append(np.full(n, sh))
        out.append({"phase": name, "start_s": round(t, 1), "duration_s": round(n * bin_s, 1)})
        t += n * bin_s
    weight, sh_arr = np.concatenate(w_l), np.concatenate(s_l)
    return Schedule(weight, sh_arr, weight.size, out)


class Simulator:
    def __init__(self, model: TrafficModel, policy: RolloutPolicy, seed: int) -> None:
        self.m = model
        self.policy = policy
        reg = GateRegistry.with_builtins()
        self.gates = [g for g in policy.step_gates(0, reg) if isinstance(g, SequentialGate)]
        self.bin = self.gates[0].bin
        self.rng = np.random.default_rng(seed)
        # large pools stand in for the latency distributions; exceedance probabilities are read off them
        u = self.rng.uniform(size=400_000)
        self.u = u
        self.inc_pool = np.interp(u, KNOTS, model.q)
        self.shadow_pool = np.interp(u, KNOTS, model.q_shadow)
        self._lr: dict[tuple[str, float], tuple[oracle.LatencyLR, oracle.LatencyLR]] = {}
        self.last_counts: tuple[np.ndarray, np.ndarray] = (np.zeros(0, dtype=np.int64),) * 2

    def _exceed(self, pool: np.ndarray, thr: float) -> float:
        return float(np.mean(pool > thr))

    def run(self, case: str | None, shadow: bool, sched: Schedule) -> tuple[float | None, str | None]:
        """Time (s from onset = rollout start) the first gate alarms, or None; and which gate."""
        rng, m, b = self.rng, self.m, self.bin
        kind, size = CASES[case] if case else ("none", 0.0)
        live = rng.poisson(m.rps * b, sched.bins)
        n_c_live = rng.binomial(live, sched.weight)
        n_i = live - n_c_live
        n_sh = np.where(sched.shadow, n_i, 0)  # every request the active serves is mirrored
        n_c = n_c_live + n_sh
        p0 = m.error_rate
        pc = min(1.0, p0 + size) if kind == "errors" else p0
        self.last_counts = (n_c_live, n_sh)  # the traffic the oracle sees in the same run
        found: list[tuple[int, str]] = []
        for g in self.gates:
            if g.signal == "errors":
                x_i, x_c = rng.binomial(n_i, p0), rng.binomial(n_c, pc)
                r = seq.two_sample_msprt(n_c, x_c, n_i, x_i, g.alpha)
            elif g.signal == "latency":
                base = np.interp(rng.uniform(size=int(m.rps * g.baseline)), KNOTS, m.q)
                thr = float(np.quantile(base, g.quantile))
                p_i = self._exceed(self.inc_pool, thr)
                pool = self.shadow_pool if g.channel == "shadow" else self.inc_pool
                if kind == "latency_scale":
                    pool = pool * size
                elif kind == "latency_tail":
                    pool = tail_stretch(pool, self.u, size)
                rows = {"shadow": n_sh, "live": n_c_live, "all": n_c}[g.channel]
                x_i, x_c = rng.binomial(n_i, p_i), rng.binomial(rows, self._exceed(pool, thr))
                r = seq.two_sample_msprt(rows, x_c, n_i, x_i, g.alpha, null_odds=g.null_odds)
            else:
                pd = m.divergence_rate + (size if kind == "divergence" else 0.0)
                x = rng.binomial(n_sh, min(1.0, pd))
                r = seq.one_sample_msprt(n_sh, x, g.max_rate, g.alpha)
            if r.crossed:
                found.append((r.cross_bin, g.name))  # type: ignore[arg-type]
        if not found:
            return None, None
        k, name = min(found)
        return (k + 1) * b, name


    # ---------------- the statistical limit: Wald's SPRT with the true parameters ----------------

    def degraded(self, kind: str, size: float, pool: np.ndarray) -> np.ndarray:
        if kind == "latency_scale":
            return pool * size
        if kind == "latency_tail":
            return tail_stretch(pool, self.u, size)
        return pool

    def oracle(self, case: str, alpha: float, beta: float) -> float | None:
        """Seconds from onset the oracle detects on the last run's traffic, or None (see judge_oracle.py)."""
        kind, size = CASES[case]
        n_c_live, n_sh = self.last_counts
        rng, m = self.rng, self.m
        floor = 1.0 / max(1, self.m.fit.get("incumbent_requests", 10_000))
        if kind == "errors":
            p0 = max(m.error_rate, floor)
            k = oracle.bernoulli_bins(rng, n_c_live + n_sh, p0, min(0.999, p0 + size), alpha, beta)
        elif kind == "divergence":
            p0 = max(m.divergence_rate, floor)
            k = oracle.bernoulli_bins(rng, n_sh, p0, min(0.999, p0 + size), alpha, beta)
        else:
            q_live = lambda u: np.interp(u, KNOTS, m.q)  # noqa: E731
            q_sh = lambda u: np.interp(u, KNOTS, m.q_shadow)  # noqa: E731
            if kind == "latency_scale":
                g_live, g_sh = (lambda u: q_live(u) * size), (lambda u: q_sh(u) * size)
            else:
                stretch = lambda u: 1.0 + size * np.clip((u - 0.90) / 0.09, 0.0, 1.0)  # noqa: E731
                g_live, g_sh = (lambda u: q_live(u) * stretch(u)), (lambda u: q_sh(u) * stretch(u))
            key = (kind, size)
            if key not in self._lr:
                self._lr[key] = (oracle.LatencyLR.of(q_live, g_live), oracle.LatencyLR.of(q_sh, g_sh))
            lr_live, lr_sh = self._lr[key]
            k = oracle.latency_bins(rng, [(n_c_live, lr_live), (n_sh, lr_sh)], alpha, beta)
        return None if k is None else (k + 1) * self.bin

    # ---------------- a whole rollout, phase by phase, with early success on or off ----------------

    def rollout(self, case: str | None, shadow: bool, early: bool) -> dict[str, Any]:
        """One rollout under the policy: the gates judge every bin from the rollout start; with early success a
        step (never the soak) ends at the first bin where the policy's early-success test has crossed, its
        min_samples are met and min_fraction of its min_duration has passed. Returns when it was detected
        (aborted) or promoted, in seconds from the rollout start."""
        rng, m, b, pol = self.rng, self.m, self.bin, self.policy
        es = pol.early_success
        kind, size = CASES[case] if case else ("none", 0.0)
        phases: list[tuple[float, bool, float, int, bool]] = []  # weight, shadow, min_duration, need, soak
        if shadow and pol.shadow.enabled:
            phases.append((0.0, True, pol.shadow.min_duration, pol.shadow.min_samples, False))
        for st in pol.steps:
            soak = st.weight >= 100
            phases.append((st.weight / 100, shadow, max(st.min_duration, pol.soak) if soak else st.min_duration,
                           st.min_samples, soak))
        p0 = m.error_rate
        pc = min(1.0, p0 + size) if kind == "errors" else p0
        pd = min(1.0, m.divergence_rate + (size if kind == "divergence" else 0.0))
        probs: dict[str, tuple[float, float, float]] = {}  # latency gates: p_incumbent, p_live_canary, p_shadow
        for g in self.gates:
            if g.signal == "latency":
                base = np.interp(rng.uniform(size=int(m.rps * g.baseline)), KNOTS, m.q)
                thr = float(np.quantile(base, g.quantile))
                probs[g.name] = (self._exceed(self.inc_pool, thr),
                                 self._exceed(self.degraded(kind, size, self.inc_pool), thr),
                                 self._exceed(self.degraded(kind, size, self.shadow_pool), thr))
        med = float(np.quantile(np.interp(rng.uniform(size=int(m.rps * 120)), KNOTS, m.q), 0.5))
        es_p = (self._exceed(self.inc_pool, med), self._exceed(self.degraded(kind, size, self.inc_pool), med),
                self._exceed(self.degraded(kind, size, self.shadow_pool), med))
        cols: dict[str, list[np.ndarray]] = {}
        caches = {g.name: seq.LLRCache() for g in self.gates}
        es_cache = seq.LLRCache()
        t_bins = 0

        def add(name: str, *arrays: np.ndarray) -> None:
            for i, a in enumerate(arrays):
                cols.setdefault(f"{name}{i}", []).append(a)

        def col(name: str) -> np.ndarray:
            return np.concatenate(cols[name]) if cols.get(name) else np.zeros(0, dtype=np.int64)

        for w, sh, min_dur, need, soak in phases:
            nb = math.ceil(min_dur / b)
            live = rng.poisson(m.rps * b, nb)
            n_c_live = rng.binomial(live, w)
            n_i = live - n_c_live
            n_sh = np.where(sh, n_i, 0)
            for g in self.gates:
                if g.signal == "errors":
                    add(g.name, n_c_live + n_sh, rng.binomial(n_c_live + n_sh, pc), n_i, rng.binomial(n_i, p0))
                elif g.signal == "latency":
                    pi, pl, ps = probs[g.name]
                    rows, p_c = {"shadow": (n_sh, ps), "live": (n_c_live, pl), "all": (n_c_live + n_sh, pl)}[g.channel]
                    add(g.name, rows, rng.binomial(rows, p_c), n_i, rng.binomial(n_i, pi))
                else:
                    add(g.name, n_sh, rng.binomial(n_sh, pd))
            add("es", n_c_live + n_sh, rng.binomial(n_c_live, es_p[1]) + rng.binomial(n_sh, es_p[2]), n_i,
                rng.binomial(n_i, es_p[0]))
            end = t_bins + nb
            fail: tuple[int, str] | None = None
            for g in self.gates:
                c = caches[g.name]
                if g.signal == "divergence":
                    r = seq.one_sample_msprt(col(f"{g.name}0"), col(f"{g.name}1"), g.max_rate, g.alpha, cache=c)
                else:
                    r = seq.two_sample_msprt(*(col(f"{g.name}{i}") for i in range(4)), g.alpha, cache=c,
                                             null_odds=g.null_odds if g.signal == "latency" else 1.0)
                if r.crossed and (fail is None or r.cross_bin < fail[0]):  # type: ignore[operator]
                    fail = (int(r.cross_bin), g.name)  # type: ignore[arg-type]
            stop = end
            if early and not soak:
                r = seq.two_sample_msprt(col("es2"), col("es3"), col("es0"), col("es1"), es.beta, cache=es_cache,
                                         null_odds=1.0 / es.margin_odds)
                if r.crossed:
                    seen = np.cumsum(col("es0")[t_bins:end])
                    k_need = t_bins + int(np.searchsorted(seen, need))
                    k = max(int(r.cross_bin), t_bins + math.ceil(min_dur * es.min_fraction / b) - 1, k_need)  # type: ignore[arg-type]
                    stop = min(end, k + 1)
            if fail is not None and fail[0] < stop:
                return {"detected_s": (fail[0] + 1) * b, "gate": fail[1], "promoted_s": None}
            if stop < end:  # passed early: the rest of this phase's bins never happen
                for key in cols:
                    last = cols[key][-1]
                    cols[key][-1] = last[: last.size - (end - stop)]
            t_bins = stop
        return {"detected_s": None, "gate": None, "promoted_s": t_bins * b}


def _summary(times: list[float | None], gates: list[str | None], target: float, lag: float) -> dict[str, Any]:
    hit = [t + lag for t in times if t is not None]
    n = len(times)
    by_gate: dict[str, int] = {}
    for g in gates:
        if g:
            by_gate[g] = by_gate.get(g, 0) + 1
    return {"runs": n, "detected": len(hit), "detection_rate": round(len(hit) / n, 4) if n else None,
            "median_time_to_detect_s": round(float(np.median(hit)), 3) if hit else None,
            "p95_time_to_detect_s": round(float(np.quantile(hit, 0.95)), 3) if hit else None,
            "max_time_to_detect_s": round(float(np.max(hit)), 3) if hit else None,
            "target_s": target,
            "within_target_rate": round(sum(t <= target for t in hit) / n, 4) if n else None,
            "first_gate": by_gate}


def _oracle(sim: Simulator, case: str, traffic: list[tuple[np.ndarray, np.ndarray]], alpha: float, power: float,
            lag: float) -> dict[str, Any]:
    beta = min(0.5, max(1e-3, 1.0 - power))
    times = []
    for counts in traffic:
        sim.last_counts = counts
        times.append(sim.oracle(case, alpha, beta))
    hit = [t + lag for t in times if t is not None]
    return {"alpha": alpha, "beta": round(beta, 4), "detection_rate": round(len(hit) / len(times), 4),
            "median_time_to_detect_s": round(float(np.median(hit)), 3) if hit else None}


def _pct(xs: list[float], q: float) -> float | None:
    return round(float(np.quantile(xs, q)), 1) if xs else None


def _good_rollouts(sim: Simulator, n: int, note: Callable[[str], None]) -> dict[str, Any]:
    """A/A rollouts with shadow under the default policy, early success off and on, in the same run."""
    soak = sim.policy.soak
    out: dict[str, Any] = {"rollouts": n, "soak_s": soak,
                           "note": "time from the rollout start to the flip; steps = minus the soak at 100%, "
                                   "which early success never shortens (it waits for slow faults such as leaks)"}
    p50s: dict[str, float | None] = {}
    for early in (False, True):
        rs = [sim.rollout(None, True, early) for _ in range(n)]
        done = [r["promoted_s"] for r in rs if r["promoted_s"] is not None]
        mode = "early_success" if early else "fixed"
        out[mode] = {"p50": _pct(done, 0.5), "p95": _pct(done, 0.95),
                     "steps_p50": _pct([t - soak for t in done], 0.5),
                     "steps_p95": _pct([t - soak for t in done], 0.95), "false_aborts": n - len(done)}
        p50s[mode] = out[mode]["p50"]
        note(f"good rollouts, {mode}: {out[mode]}")
    f, e = out["fixed"], out["early_success"]
    out["p50_ratio_early_to_fixed"] = round(e["p50"] / f["p50"], 3) if e["p50"] and f["p50"] else None
    out["steps_p50_ratio_early_to_fixed"] = (round(e["steps_p50"] / f["steps_p50"], 3)
                                             if e["steps_p50"] and f["steps_p50"] else None)
    return out


def _false_promotions(sim: Simulator, n: int, note: Callable[[str], None]) -> dict[str, Any]:
    """Degraded canaries promoted (never detected before the flip), early success on against off."""
    out: dict[str, Any] = {"rollouts_per_case": n, "shadow": True}
    for case in CASES:
        out[case] = {}
        for early in (False, True):
            rs = [sim.rollout(case, True, early) for _ in range(n)]
            out[case]["early" if early else "fixed"] = {"promoted": sum(r["promoted_s"] is not None for r in rs)}
        note(f"false promotions {case}: {out[case]}")
    return out


# ---------------- evaluation speed over a real store ----------------

def build_store(path: Path, rows: int, seed: int, model: TrafficModel) -> tuple[Any, float]:
    from samantha.core.config import StoreConfig
    from samantha.telemetry.store import SampleBatch, TelemetryStore

    rng = np.random.default_rng(seed)
    n_samples = rows // 10
    n_req = rows - n_samples
    span = n_req / model.rps
    now = 1_800_000_000.0
    t0 = now - span
    clock = SimClock(now)
    store = TelemetryStore(path, StoreConfig(buffer_max_rows=3_000_000, buffer_max_bytes=1 << 30,
                                             raw_horizon_s=10 * 86400, disk_budget_mb=8192,
                                             memory_limit_mb=1024), clock)
    chunk = 1_000_000
    slots = pa.array(["active", "standby"])
    for a in range(0, n_req, chunk):
        n = min(chunk, n_req - a)
        ts = t0 + (a + np.arange(n)) / model.rps
        standby = rng.uniform(size=n) < 0.5  # half the rows: shadow-scored canary
        slot = pa.DictionaryArray.from_arrays(pa.array(standby.astype(np.int8)), slots).cast(pa.string())
        div = np.where(standby, np.where(rng.uniform(size=n) < 0.001, 0.2, 0.0), np.nan)
        store.ingest_request_columns(ts, slot, "sensor-mlp@1", model.latencies(rng, n), rng.uniform(size=n) > 0.01,
                                     div, standby)
        store.flush()
    metrics = ["host_memory_used_percent", "host_disk_used_percent", "host_temperature_celsius", "input_feature_mean"]
    per = n_samples // (len(metrics) * 5)  # 1 Hz per series, written in time order as a collector would
    for c0 in range(0, per, 5000):
        ts = now - per + c0 + np.arange(min(5000, per - c0), dtype=float)
        for mi, metric in enumerate(metrics):
            for k in range(5):
                store.ingest_samples(SampleBatch(metric, {"core": str(k)}, ts, rng.normal(50 + mi, 5, ts.size)))
        store.flush()
    store.ingest_samples(SampleBatch("cube_bundle_expires_timestamp_seconds", {}, [now - 10], [now + 86400]))
    store.ingest_samples(SampleBatch("samantha_policy_issued_timestamp_seconds", {}, [now - 10], [now - 3600]))
    store.ingest_samples(SampleBatch("samantha_last_sync_timestamp_seconds", {}, [now - 10], [now - 600]))
    store.flush()
    return store, now


def hundred_gates() -> list[Any]:
    from samantha.gates.spec import CompareGate, DriftGate, JudgeGate, StalenessGate, ThresholdGate

    g: list[Any] = []
    for i, (sig, q) in enumerate([("errors", 0.95), ("latency", 0.95), ("latency", 0.99), ("divergence", 0.95)] * 5):
        g.append(SequentialGate(name=f"seq-{i}", signal=sig, quantile=q, alpha=1e-4 * (1 + i % 3), tolerance=0.01))
    for i in range(20):
        w = (30, 60, 300)[i % 3]
        metric, agg = [("latency_ms", "p99"), ("latency_ms", "p95"), ("error_rate", "mean"), ("rps", "rate"),
                       ("latency_ms", "mean")][i % 5]
        g.append(ThresholdGate(name=f"thr-req-{i}", metric=metric, aggregate=agg, value=1e9, window=w,
                               slot=("active", "standby", None)[i % 3], include_shadow=i % 2 == 0))
    for i in range(15):
        g.append(CompareGate(name=f"cmp-{i}", metric=("error_rate", "latency_ms")[i % 2],
                             aggregate=("mean", "p99", "p95")[i % 3], max_increase=0.01 * (i + 1),
                             window=(30, 60, 120)[i % 3]))
    for i in range(15):
        g.append(JudgeGate(name=f"judge-{i}", test=("latency", "errors", "divergence")[i % 3],
                           window=(30, 60)[i % 2], tolerance=0.01))
    metrics = ["host_memory_used_percent", "host_disk_used_percent", "host_temperature_celsius", "input_feature_mean"]
    for i in range(12):
        g.append(ThresholdGate(name=f"thr-host-{i}", metric=metrics[i % 4], aggregate=("mean", "max", "last")[i % 3],
                               value=1e9, window=(30, 120)[i % 2], labels={"core": str(i % 5)} if i % 2 else {}))
    for i in range(13):
        if i < 8:
            g.append(DriftGate(name=f"drift-{i}", metric=metrics[i % 4], window=60, baseline_offset=300,
                               baseline_window=300, method=("auto", "ks", "psi", "wasserstein")[i % 4]))
        else:
            g.append(DriftGate(name=f"drift-{i}", metric="latency_ms", window=60, baseline_offset=120,
                               slot=("active", "standby")[i % 2], method=("auto", "ks", "psi")[i % 3]))
    g += [StalenessGate(name="st-expiry", signal="bundle_expiry", min_remaining=3600),
          StalenessGate(name="st-policy", signal="policy_age", max_age=86400),
          StalenessGate(name="st-sync", signal="last_sync", max_age=3600),
          StalenessGate(name="st-fleet", signal="fleet_divergence", max_divergence=0.1),
          StalenessGate(name="st-expiry-2", signal="bundle_expiry", min_remaining=60)]
    assert len(g) == 100, len(g)
    return g


def eval_speed(rows: int, seed: int, model: TrafficModel, reps: int,
               note: Callable[[str], None]) -> dict[str, Any]:
    from samantha.gates.engine import GateEngine

    with tempfile.TemporaryDirectory(prefix="judge-bench-") as d:
        t0 = time.perf_counter()
        store, now = build_store(Path(d) / "bench.duckdb", rows, seed, model)
        build_s = time.perf_counter() - t0
        note(f"store built: {rows} rows in {build_s:.1f}s")
        try:
            total = store.query_scalar("SELECT (SELECT count(*) FROM requests) + (SELECT count(*) FROM samples)")
            engine = GateEngine(store, SimClock(now))
            gates = hundred_gates()
            policy_gates = RolloutPolicy().step_gates(0, GateRegistry.with_builtins())
            # a rollout in progress since `r0`; evaluations move forward in time as they do live
            r0 = now - 900
            t = time.perf_counter()
            engine.evaluate(gates, now - 600, rollout_start=r0)
            cold_ms = (time.perf_counter() - t) * 1000
            times, cpu, policy_times, base_times, fails = [], [], [], [], 0
            for k in range(reps):
                t_now = now - 600 + (k + 1) * 1.0  # one pass per second of telemetry, as live
                t, c = time.perf_counter(), time.process_time()
                vs = engine.evaluate(gates, t_now, rollout_start=r0)
                times.append((time.perf_counter() - t) * 1000)
                cpu.append((time.process_time() - c) * 1000)
                fails += sum(v.status == "fail" for v in vs)
                t = time.perf_counter()
                engine.evaluate(policy_gates, t_now, rollout_start=r0)
                policy_times.append((time.perf_counter() - t) * 1000)
                t = time.perf_counter()
                store.read_arrow("SELECT count(*), avg(latency_ms) FROM requests WHERE ts > ? AND ts <= ?",
                                 [t_now - 60, t_now])
                base_times.append((time.perf_counter() - t) * 1000)
            statuses: dict[str, int] = {}
            for v in vs:
                statuses[v.status] = statuses.get(v.status, 0) + 1
        finally:
            store.close()
    p95 = float(np.quantile(times, 0.95))
    return {"eval_100_gates_p95_ms": round(p95, 2), "eval_100_gates_median_ms": round(float(np.median(times)), 2),
            "eval_100_gates_cpu_p95_ms": round(float(np.quantile(cpu, 0.95)), 2),
            "eval_100_gates_cpu_median_ms": round(float(np.median(cpu)), 2),
            "eval_load_average_1m": round(os.getloadavg()[0], 2), "eval_cores": os.cpu_count(),
            "eval_store_rows": int(total), "eval_reps": reps, "eval_first_pass_cold_ms": round(cold_ms, 2),
            "eval_note": "one pass = all 100 gates, one pass per second of telemetry during a rollout in progress "
                         "for 5 min (sequential gates reuse per-bin evidence of earlier passes); wall and CPU "
                         "(process time, DuckDB threads included) per pass; ratio = median pass / one bare "
                         "60 s window query in the same run", "eval_last_statuses": statuses,
            "eval_policy_gates_p95_ms": round(float(np.quantile(policy_times, 0.95)), 2),
            "eval_baseline_one_window_query_median_ms": round(float(np.median(base_times)), 2),
            "eval_ratio_100_gates_to_one_query": round(float(np.median(times)) / max(1e-9, float(np.median(base_times))), 1),
            "eval_store_build_s": round(build_s, 1), "eval_target_ms": 50}


def run_judge_bench(*, quick: bool = False, seed: int = 7, progress: bool = False,
                    fixture: Path | None = None) -> dict[str, Any]:
    from rich.console import Console

    console = Console(stderr=True)

    def note(msg: str) -> None:
        if progress:
            console.print(f"[dim]{msg}[/dim]")

    t_start = time.perf_counter()
    model = TrafficModel.load(fixture) if fixture else TrafficModel.load()
    policy = RolloutPolicy()
    sim = Simulator(model, policy, seed)
    n_aa = 40 if quick else 300
    n_case = 10 if quick else 100
    speed = eval_speed(1_000_000 if quick else 10_000_000, seed, model, 10 if quick else 40, note)
    lag = FLUSH_LAG_S + speed["eval_policy_gates_p95_ms"] / 1000
    out: dict[str, Any] = {"bench": "judge", "quick": quick, "seed": seed, "traffic": describe(model.fit),
                           "rps": model.rps}
    sched = {sh: schedule(policy, model.rps, sim.bin, sh) for sh in (True, False)}
    out["policy"] = {"alpha_per_rollout": policy.alpha, "gates": [g.name for g in sim.gates],
                     "alpha_per_gate": sim.gates[0].alpha, "bin_s": sim.bin,
                     "detection_lag_s": round(lag, 3),
                     "detection_lag_note": "bin end + 50 ms group commit + p95 evaluation time of the policy gates",
                     "rollout_with_shadow": sched[True].phases, "rollout_without_shadow": sched[False].phases}
    aa: dict[str, Any] = {}
    for sh in (True, False):
        alarms = []
        for _ in range(n_aa):
            t, g = sim.run(None, sh, sched[sh])
            if t is not None:
                alarms.append({"t_s": round(t, 1), "gate": g})
        key = "shadow" if sh else "no_shadow"
        aa[key] = {"rollouts": n_aa, "false_aborts": len(alarms), "alarms": alarms,
                   "rollout_s": round(sched[sh].bins * sim.bin, 1)}
        note(f"A/A {key}: {len(alarms)} false aborts in {n_aa}")
    out["aa_rollouts"] = n_aa
    out["aa_false_aborts"] = {"shadow": aa["shadow"]["false_aborts"], "no_shadow": aa["no_shadow"]["false_aborts"],
                              "rollouts": n_aa, "target": 0}
    out["aa"] = aa
    deg: dict[str, Any] = {}
    ratios: dict[str, dict[str, float | None]] = {}
    for case in CASES:
        deg[case], ratios[case] = {}, {}
        for sh in (True, False):
            times, gates, traffic = [], [], []
            for _ in range(n_case):
                t, g = sim.run(case, sh, sched[sh])
                times.append(t)
                gates.append(g)
                traffic.append(sim.last_counts)
            key = "shadow" if sh else "no_shadow"
            summ = deg[case][key] = _summary(times, gates, TARGET_S[case], lag)
            summ["oracle"] = _oracle(sim, case, traffic, policy.alpha, summ["detection_rate"] or 0.0, lag)
            ours, best = summ["median_time_to_detect_s"], summ["oracle"]["median_time_to_detect_s"]
            summ["oracle_ratio"] = ratios[case][key] = round(ours / best, 2) if ours and best else None
        note(f"{case}: {deg[case]['shadow']['detection_rate']} / {deg[case]['no_shadow']['detection_rate']}, "
             f"oracle ratio {ratios[case]}")
    out["degradations"] = deg
    out["oracle_ratio"] = ratios
    out["oracle_note"] = ("oracle: Wald's SPRT with the true incumbent and degraded distributions (per-request "
                          "likelihood ratio, samantha/harness/bench/judge_oracle.py) on the same per-bin canary "
                          "traffic of each run, checked per bin, alpha = the rollout's alpha, power = Samantha's "
                          "detection rate in that case (beta floored at 0.001); both medians include the same "
                          "detection lag; ratio = Samantha's median time to detect / the oracle's; target <= 3")
    tail = deg["latency_p99_+20pct"]["shadow"]
    out["tail_p99_20pct_detect_within_30s"] = tail["within_target_rate"]
    out["good_rollout_time_s"] = _good_rollouts(sim, n_case, note)
    out["false_promotions"] = _false_promotions(sim, max(5, n_case // 2), note)
    hard = [c for c, t in TARGET_S.items() if t <= 1.0]
    g = out["good_rollout_time_s"]
    out["targets"] = {
        "aa_false_aborts_0": aa["shadow"]["false_aborts"] == 0 and aa["no_shadow"]["false_aborts"] == 0,
        "hard_100pct_within_1s_shadow": all(deg[c]["shadow"]["within_target_rate"] == 1.0 for c in hard),
        "soft_within_30s_shadow": {c: deg[c]["shadow"]["within_target_rate"] for c in CASES if c not in hard},
        "tail_p99_20pct_detect_within_30s_ge_0.95": (tail["within_target_rate"] or 0) >= 0.95,
        "oracle_ratio_le_3": {c: (r["shadow"] is not None and r["shadow"] <= 3) for c, r in ratios.items()},
        "good_rollout_p50_halved": g["p50_ratio_early_to_fixed"] is not None and g["p50_ratio_early_to_fixed"] <= 0.5,
        "good_rollout_steps_p50_halved": (g["steps_p50_ratio_early_to_fixed"] is not None
                                          and g["steps_p50_ratio_early_to_fixed"] <= 0.5),
        "false_promotions_0_early": all(v["early"]["promoted"] == 0 for v in out["false_promotions"].values()
                                        if isinstance(v, dict)),
        "eval_100_gates_p95_le_50ms": speed["eval_100_gates_p95_ms"] <= 50,
    }
    out.update(speed)
    out["wall_s"] = round(time.perf_counter() - t_start, 1)
    return out
