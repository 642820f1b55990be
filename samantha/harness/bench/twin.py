"""`samantha twin bench`: how fast the twin's router goes, and what a flip costs under load.

router_max_rps: the highest offered rate the router sustains with both slots behind
proxies (every request answered 200, achieved >= 97% of offered, p99 < 50 ms over
the step). flip_ms: control-API round trip of a flip under 200 rps, and the
requests that failed meanwhile. CPU per process at the top step says where the time goes.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from samantha.core.config import SamanthaConfig, TwinConfig
from samantha.cube.bundle import SigningKey
from samantha.cube.client import CubeClient
from samantha.twin import lifecycle
from samantha.twin.toy_bundle import build_bundle

P99_LIMIT_MS = 50.0
STEPS = (250, 500, 750, 1000, 1250, 1500, 2000, 2500, 3000, 4000)


def _cfg(tmp: Path) -> SamanthaConfig:
    ports = {f: 0 for f in ("router_port", "control_port", "slot_a_port", "slot_b_port", "proxy_api_port",
                            "proxy_a_port", "proxy_b_port", "loadgen_port")}
    return SamanthaConfig(data_dir=str(tmp), twin=TwinConfig(**ports, ingest_url=None, rps=0))


def _step(http: httpx.Client, lg: str, rps: float, seconds: float, procs: dict[str, psutil.Process]) -> dict[str, Any]:
    http.post(f"{lg}/config", json={"rps": rps}).raise_for_status()
    time.sleep(1.0)  # warm-up window, not scored
    s0 = http.get(f"{lg}/stats").json()
    for p in procs.values():
        p.cpu_percent(None)
    time.sleep(seconds)
    cpu = {n: round(p.cpu_percent(None), 1) for n, p in procs.items()}
    s1 = http.get(f"{lg}/stats?last=600").json()
    windows = [w for w in s1["windows"] if s0["uptime_s"] - 1 <= w["t"] < s1["uptime_s"] - 1 and w["p99_ms"]]
    ok, failed = s1["ok"] - s0["ok"], s1["failed"] - s0["failed"]
    p99 = statistics.median([w["p99_ms"] for w in windows]) if windows else None
    p50 = statistics.median([w["p50_ms"] for w in windows]) if windows else None
    achieved = ok / seconds
    sustained = failed == 0 and s1["skipped"] == s0["skipped"] and achieved >= 0.97 * rps and p99 is not None \
        and p99 < P99_LIMIT_MS
    return {"offered_rps": rps, "achieved_rps": round(achieved, 1), "failed": failed, "p50_ms": p50,
            "p99_ms": p99, "sustained": sustained, "cpu_percent": cpu}


def run_bench(*, step_s: float = 3.0, flips: int = 10, steps: tuple[int, ...] = STEPS) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="twin-bench-") as tmp:
        cfg = _cfg(Path(tmp))
        st = lifecycle.up(cfg)
        try:
            return _measure(st, step_s, flips, steps)
        finally:
            lifecycle.down(cfg)


def _measure(st: dict[str, Any], step_s: float, flips: int, steps: tuple[int, ...]) -> dict[str, Any]:
    lg = lifecycle.loadgen_url(st)
    procs = {n: psutil.Process(pid) for n, pid in st["children"].items()}
    cube = CubeClient(lifecycle.control_url(st))
    out: dict[str, Any] = {"proxy_in_path": st["proxy"], "cpus": psutil.cpu_count(),
                           "load_avg_at_start": [round(x, 2) for x in psutil.getloadavg()]}
    with httpx.Client(timeout=10) as http:
        deadline = time.monotonic() + 15
        while not all(s.healthy for s in cube.state().slots) and time.monotonic() < deadline:
            time.sleep(0.1)
        # flip under 200 rps: the standby holds a retrained bundle, requests keep flowing
        key = SigningKey.load(st["signing_key"])
        build_bundle(Path(st["bundles_dir"]) / "bench-v2", name="sensor-mlp", version="2", seed=1, key=key)
        cube.load("bench-v2", request_id="bench-load")
        time.sleep(1.0)
        http.post(f"{lg}/config", json={"rps": 200}).raise_for_status()
        time.sleep(1.5)
        s0 = http.get(f"{lg}/stats").json()
        flip_ms = []
        for i in range(flips):
            t = time.perf_counter()
            cube.flip(request_id=f"bench-flip-{i}")
            flip_ms.append((time.perf_counter() - t) * 1000)
            time.sleep(0.3)
        time.sleep(0.5)
        s1 = http.get(f"{lg}/stats").json()
        out.update({"flip_ms": round(statistics.median(flip_ms), 2), "flip_ms_max": round(max(flip_ms), 2),
                    "flips": flips, "requests_during_flips": s1["sent"] - s0["sent"],
                    "requests_failed_during_flip": s1["failed"] - s0["failed"]})
        # the rate ramp
        table = []
        for rps in steps:
            row = _step(http, lg, rps, step_s, procs)
            table.append(row)
            if not row["sustained"]:
                break
        http.post(f"{lg}/config", json={"rps": 0})
        good = [r for r in table if r["sustained"]]
        out["router_max_rps"] = good[-1]["offered_rps"] if good else 0
        out["p99_limit_ms"] = P99_LIMIT_MS
        out["steps"] = table
        out["cpu_at_top_step"] = (good[-1] if good else table[0])["cpu_percent"]
    cube.close()
    return out
