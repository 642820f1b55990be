"""`samantha bench footprint`: what the daemon costs beside the models it guards.

Three probes, each in a fresh child process so one tree's imports never colour another's figures:
- `steady`: a twin at `rps` pushing telemetry, the daemon beside it with the shipped playbooks and no
  rollout; CPU share of one core over the window, PSS / RSS / USS (psutil `memory_full_info`).
- `rollout`: the `rollout-good` scenario (a progressive rollout with shadow scoring at 200 rps); the
  daemon's CPU share over the scenario's timeline.
- `eval`: 100 gates over a store of `eval_rows` rows, one pass per second of telemetry during a rollout
  (the judge bench's `eval_speed`): CPU time and wall time per pass.

With `baseline` (a checkout of another commit), every probe runs for both trees, alternating ABBA in the
same window (the machine is shared and noisy), and the result carries medians per tree and ratios
after / before. This file is also the probe itself (`python footprint.py --probe steady ...`), run with
the tree under test on PYTHONPATH, so it imports only what both trees have.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

TARGETS = {"steady_cpu_pct": 5.0, "steady_pss_mb": 150.0, "rollout_cpu_pct": 10.0, "eval_cpu_p95_ms": 20.0}


def _probe_steady(rps: float, seconds: float, warmup: float) -> dict[str, Any]:
    import psutil

    from samantha.core.config import SamanthaConfig
    from samantha.core.ports import free_port
    from samantha.harness.daemon_process import DaemonProcess, write_config
    from samantha.twin import lifecycle

    tmp = Path(tempfile.mkdtemp(prefix="samantha-footprint-"))
    port = free_port()
    ports = {k: 0 for k in ("router_port", "control_port", "slot_a_port", "slot_b_port", "proxy_api_port",
                            "proxy_a_port", "proxy_b_port", "loadgen_port")}
    cfg = SamanthaConfig.model_validate({"data_dir": str(tmp / "state"), "api": {"port": port},
                                         "twin": {**ports, "rps": rps,
                                                  "ingest_url": f"http://127.0.0.1:{port}/v1/ingest/requests"}})
    lifecycle.up(cfg)
    try:
        with DaemonProcess(cfg, write_config(cfg, tmp / "samantha.yaml"), log=tmp / "daemon.log") as d:
            d.start().wait_ready(90, verdicts=True)
            time.sleep(warmup)
            ps = psutil.Process(d.pid)
            st0 = d.client.status()
            c0, w0 = sum(ps.cpu_times()[:2]), time.monotonic()
            mem: dict[str, list[float]] = {"rss": [], "pss": [], "uss": []}
            while time.monotonic() - w0 < seconds:
                m = ps.memory_full_info()
                for k in mem:
                    mem[k].append(getattr(m, k) / 2**20)
                time.sleep(1.0)
            cpu = 100 * (sum(ps.cpu_times()[:2]) - c0) / (time.monotonic() - w0)
            st = d.client.status()
            loop = st["loop"]
            return {"cpu_pct": round(cpu, 2), **{f"{k}_mb_max": round(max(v), 1) for k, v in mem.items()},
                    **{f"{k}_mb_last": round(v[-1], 1) for k, v in mem.items()},
                    "cycles_per_s": round((loop["cycles"] - st0["loop"]["cycles"]) / seconds, 2),
                    "commits_per_s": round((st["telemetry"]["commits"] - st0["telemetry"]["commits"]) / seconds, 2),
                    "cycle_ms_p50": loop["cycle_ms_p50"], "rows_accepted": st["telemetry"]["accepted"],
                    "loop_errors": loop["errors"]}
    finally:
        lifecycle.down(cfg)
        shutil.rmtree(tmp, ignore_errors=True)


def _probe_rollout(scenarios: Path) -> dict[str, Any]:
    from samantha.harness.scenario_run import run_scenario
    from samantha.twin.scenario import load_scenario

    rep = run_scenario(load_scenario(scenarios / "rollout-good.yaml"))
    daemon = rep.get("daemon") or {}
    return {"cpu_pct": daemon.get("cpu_pct"), "rss_mb": daemon.get("rss_mb"), "uss_mb": daemon.get("uss_mb"),
            "window_s": daemon.get("cpu_window_s"), "rps": daemon.get("rps")}



def _probe_eval(rows: int, reps: int) -> dict[str, Any]:
    from samantha.harness.bench.judge import eval_speed
    from samantha.harness.traffic_model import TrafficModel

    r = eval_speed(rows, 7, TrafficModel.load(), reps, lambda m: None)
    return {"cpu_p95_ms": r["eval_100_gates_cpu_p95_ms"], "cpu_median_ms": r["eval_100_gates_cpu_median_ms"],
            "wall_p95_ms": r["eval_100_gates_p95_ms"], "wall_median_ms": r["eval_100_gates_median_ms"],
            "store_rows": r["eval_store_rows"], "reps": reps}


def _run_probe(tree: Path, args: list[str], timeout: float) -> dict[str, Any]:
    """One probe in a child process with `tree` first on PYTHONPATH (its daemon and twin children too)."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    p = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--probe", *args], env=env, cwd=tree,
                       capture_output=True, text=True, timeout=timeout)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not lines:
        return {"error": f"probe exited {p.returncode}: {(p.stderr or p.stdout)[-400:]}"}
    return json.loads(lines[-1])


def _median(runs: list[dict[str, Any]], key: str) -> float | None:
    vals = [r[key] for r in runs if isinstance(r.get(key), int | float)]
    return round(statistics.median(vals), 2) if vals else None


def run_footprint_bench(*, rps: float = 200, seconds: float = 30, warmup: float = 10, rounds: int = 1,
                        baseline: Path | None = None, rollout: bool = True, eval_rows: int = 10_000_000,
                        eval_reps: int = 40, log: Callable[[str], None] = lambda m: None) -> dict[str, Any]:
    here = Path(__file__).resolve().parents[3]
    trees = {"after": here} if baseline is None else {"before": baseline.resolve(), "after": here}
    probes: dict[str, list[str]] = {"steady": ["steady", "--rps", str(rps), "--seconds", str(seconds),
                                               "--warmup", str(warmup)]}
    if rollout:
        probes["rollout"] = ["rollout", "--scenarios", str(here / "scenarios")]
    if eval_rows > 0:
        probes["eval"] = ["eval", "--rows", str(eval_rows), "--reps", str(eval_reps)]
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {p: {t: [] for t in trees} for p in probes}
    order = list(trees)
    for r in range(rounds):
        for probe, argv in probes.items():
            for t in (order if r % 2 == 0 else order[::-1]):  # ABBA: drift in load hits both sides alike
                log(f"round {r + 1}/{rounds}: {probe} on {t} ({trees[t]})")
                runs[probe][t].append(_run_probe(trees[t], argv, timeout=1800))
    keys = {"steady": ("cpu_pct", "pss_mb_max", "rss_mb_max", "uss_mb_max", "cycles_per_s", "commits_per_s"),
            "rollout": ("cpu_pct", "rss_mb", "uss_mb"),
            "eval": ("cpu_p95_ms", "cpu_median_ms", "wall_p95_ms", "wall_median_ms")}
    out: dict[str, Any] = {"rps": rps, "seconds": seconds, "rounds": rounds,
                           "trees": {k: str(v) for k, v in trees.items()}}
    for probe in probes:
        med = {t: {k: _median(runs[probe][t], k) for k in keys[probe]} for t in trees}
        out[probe] = {"median": med, "runs": runs[probe]}
        if baseline is not None:
            out[probe]["ratio_after_to_before"] = {
                k: (round(med["after"][k] / med["before"][k], 3) if med["after"][k] and med["before"][k] else None)
                for k in keys[probe]}
    after = {p: out[p]["median"]["after"] for p in probes}
    figs = {"steady_cpu_pct": after["steady"]["cpu_pct"], "steady_pss_mb": after["steady"]["pss_mb_max"],
            "rollout_cpu_pct": after.get("rollout", {}).get("cpu_pct"),
            "eval_cpu_p95_ms": after.get("eval", {}).get("cpu_p95_ms")}
    out["targets"] = {k: {"figure": v, "target_le": TARGETS[k], "met": v is not None and v <= TARGETS[k]}
                      for k, v in figs.items()}
    out["loadavg_1m"], out["cpus"] = round(os.getloadavg()[0], 2), os.cpu_count()
    return out


def _main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--probe", choices=("steady", "rollout", "eval"), required=True)
    ap.add_argument("--rps", type=float, default=200)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--warmup", type=float, default=10)
    ap.add_argument("--scenarios", type=Path, default=Path("scenarios"))
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--reps", type=int, default=40)
    a = ap.parse_args()
    if a.probe == "steady":
        out = _probe_steady(a.rps, a.seconds, a.warmup)
    elif a.probe == "rollout":
        out = _probe_rollout(a.scenarios)
    else:
        out = _probe_eval(a.rows, a.reps)
    print(json.dumps(out))


if __name__ == "__main__":
    sys.path.pop(0)  # this file's own directory must not shadow the tree under test
    _main()
