"""`samantha cube bench`: the cube runtime's overhead over direct Triton calls, and requests lost in flips.

Real processes: two tritonservers and the cube runtime. Phase 1 interleaves direct V2 calls to the
active Triton and the same calls through the router, tick by tick at `rps` each (one open loop, the
same keep-alive client kind), so the baseline shares the run and the machine load; overhead =
p50(routed) - p50(direct), p99 likewise. Phase 2 keeps `rps` through the router while the control
API flips active and standby `flips` times, and counts the requests that did not answer 200.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from samantha.harness.triton_cube import V2_REQUEST, TritonCube
from samantha.twin.http import install_uvloop

BODY = orjson.dumps(V2_REQUEST)
PATH = "/v2/models/sensor/infer"


def _pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    s = sorted(xs)
    return round(s[min(len(s) - 1, int(q * len(s)))], 3)


async def _one(client: httpx.AsyncClient, out: list[float], fails: list[int]) -> None:
    t0 = time.perf_counter()
    try:
        r = await client.post(PATH, content=BODY, headers={"content-type": "application/json"})
        ok = r.status_code == 200
    except httpx.HTTPError:
        ok = False
    if ok:
        out.append((time.perf_counter() - t0) * 1000)
    else:
        fails.append(1)


async def _open_loop(clients: list[httpx.AsyncClient], rps: float, seconds: float,
                     during: Any = None) -> tuple[list[list[float]], list[list[int]]]:
    """Tick at rps per client, clients interleaved; `during` (a coroutine) runs alongside."""
    lat: list[list[float]] = [[] for _ in clients]
    fails: list[list[int]] = [[] for _ in clients]
    n = int(rps * seconds)
    step = 1.0 / (rps * len(clients))
    tasks: set[asyncio.Task] = set()
    side = asyncio.ensure_future(during) if during is not None else None
    t0 = time.perf_counter()
    for i in range(n * len(clients)):
        delay = t0 + i * step - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        k = i % len(clients)
        t = asyncio.ensure_future(_one(clients[k], lat[k], fails[k]))
        tasks.add(t)
        t.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks, timeout=30)
    if side is not None:
        await side
    return lat, fails


async def _flips(cube: TritonCube, n: int, gap_s: float, done: list[dict]) -> None:
    async with httpx.AsyncClient(base_url=cube.control_url, timeout=30) as c:
        for i in range(n):
            await asyncio.sleep(gap_s)
            r = await c.post("/v1/flip", json={"request_id": f"bench-flip-{time.time_ns()}-{i}"})
            done.append({"status": r.status_code, "active": r.json().get("state", {}).get("active")})


async def _measure(cube: TritonCube, rps: float, seconds: float, flips: int) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    direct_url = cube.active_triton().url
    async with httpx.AsyncClient(base_url=direct_url, limits=limits, timeout=5) as direct, \
            httpx.AsyncClient(base_url=cube.data_url, limits=limits, timeout=5) as routed:
        await _open_loop([direct, routed], rps, 1.0)  # warm both paths and pools
        t0 = time.perf_counter()
        (d, r), (df, rf) = await _open_loop([direct, routed], rps, seconds)
        achieved = (len(d) + len(r) + len(df) + len(rf)) / 2 / (time.perf_counter() - t0)
        flipped: list[dict] = []
        (fl,), (ff,) = await _open_loop([routed], rps, max(seconds, flips * 0.6 + 1.0),
                                        _flips(cube, flips, 0.5, flipped))
    p50d, p50r, p99d, p99r = _pct(d, 0.5), _pct(r, 0.5), _pct(d, 0.99), _pct(r, 0.99)
    overhead50 = round(statistics.median(r) - statistics.median(d), 3) if d and r else None
    return {
        "rps_each": rps, "seconds": seconds, "achieved_rps_each": round(achieved, 1),
        "load_average_1m": round(os.getloadavg()[0], 2),  # a saturated host inflates both paths' tails
        "direct": {"n": len(d), "failed": len(df), "p50_ms": p50d, "p99_ms": p99d},
        "routed": {"n": len(r), "failed": len(rf), "p50_ms": p50r, "p99_ms": p99r},
        "overhead_p50_ms": overhead50,
        "overhead_p99_ms": round(p99r - p99d, 3) if p99r is not None and p99d is not None else None,
        "overhead_target_p50_ms": 0.5,
        "overhead_met": overhead50 is not None and overhead50 <= 0.5,
        "flip": {"flips": sum(1 for f in flipped if f["status"] == 200), "refused": sum(1 for f in flipped
                 if f["status"] != 200), "requests": len(fl) + len(ff), "failed_requests": len(ff),
                 "target_failed": 0, "met": not ff and all(f["status"] == 200 for f in flipped)},
    }


def run_cube_bench(*, rps: float = 200.0, seconds: float = 10.0, flips: int = 6, data_client: str = "pool",
                   root: Path | None = None) -> dict[str, Any]:
    """Starts the Triton Cube, loads a good bundle in both slots, measures; raises TritonUnavailable."""
    install_uvloop()  # the load generator must not be the bottleneck it measures
    with tempfile.TemporaryDirectory(prefix="cube-bench-") as tmp, \
            TritonCube(root or Path(tmp), data_client=data_client) as cube:
        for name, version in (("v1", "1"), ("v2", "2")):
            r = cube.op("load", bundle=cube.bundle(name, version))
            if r.status_code != 200:
                raise RuntimeError(f"load of {name} failed: {r.text[:300]}")
            if name == "v1":
                cube.op("flip")
        result = asyncio.run(_measure(cube, rps, seconds, flips))
    return {"bench": "cube", "server": "tritonserver (nvidia-pytriton 0.7.0), python backend, CPU",
            "protocol": "open-inference (KServe V2 HTTP)", "adapter": "triton-repository",
            "data_client": data_client, **result}
