"""`samantha proxy bench`: proxy overhead and latency-toxic accuracy on real loopback HTTP.

Three real processes: an echo upstream, the proxy (`python -m samantha.proxy`), and this
load generator (open loop, keep-alive connection pools). Phase 1 interleaves direct and
proxied requests tick by tick at `rps` each, so the baseline is measured in the same run
under the same machine load; overhead = p50(proxied) - p50(direct). Phase 2 adds a
100 ms downstream latency toxic and reports |p50 - 100|.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from samantha.cube.proxy_client import ProxyClient
from samantha.harness.proxy_process import spawn_echo_upstream, spawn_proxy
from samantha.proxy.server import new_event_loop

REQUEST = b"GET /bench HTTP/1.1\r\nHost: bench\r\n\r\n"


class _Pool:
    def __init__(self, port: int) -> None:
        self.port = port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def warm(self, n: int) -> None:
        for _ in range(n):
            self.idle.append(await asyncio.open_connection("127.0.0.1", self.port))

    async def request(self) -> float:
        conn = self.idle.pop() if self.idle else await asyncio.open_connection("127.0.0.1", self.port)
        reader, writer = conn
        t0 = time.perf_counter()
        writer.write(REQUEST)
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            k, _, v = line.partition(b":")
            if k.lower() == b"content-length":
                length = int(v)
        await reader.readexactly(length)
        dt = (time.perf_counter() - t0) * 1000.0
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(head[:40])
        self.idle.append(conn)
        return dt

    def close(self) -> None:
        for _, w in self.idle:
            w.close()


async def _open_loop(pools: list[_Pool], rps: float, seconds: float) -> tuple[list[list[float]], int]:
    """Tick at rps * len(pools); tick i goes to pool i % len(pools). Returns per-pool latencies (ms)."""
    results: list[list[float]] = [[] for _ in pools]
    errors = 0
    n = int(rps * seconds) * len(pools)
    interval = 1.0 / (rps * len(pools))
    tasks = []

    async def one(k: int) -> None:
        nonlocal errors
        try:
            results[k].append(await asyncio.wait_for(pools[k].request(), 5.0))
        except (TimeoutError, OSError, asyncio.IncompleteReadError, RuntimeError):
            errors += 1

    start = time.perf_counter()
    for i in range(n):
        delay = start + i * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i % len(pools))))
    await asyncio.gather(*tasks)
    return results, errors


def _p(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return round(statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1], 3) if len(values) > 1 else values[0]


async def _measure(direct_port: int, proxied_port: int, client: ProxyClient, rps: float,
                   seconds: float, toxic_seconds: float, latency_ms: int) -> dict[str, Any]:
    direct, proxied = _Pool(direct_port), _Pool(proxied_port)
    await direct.warm(4)
    await proxied.warm(4)
    await _open_loop([direct, proxied], rps, 1.0)  # warm-up, discarded
    (d, p), err1 = await _open_loop([direct, proxied], rps, seconds)
    client.add_toxic("bench", "latency", {"latency": latency_ms, "jitter": 0}, name="bench_latency", ttl_s=600)
    lagged = _Pool(proxied_port)
    await lagged.warm(int(rps * latency_ms / 1000) + 8)
    (t,), err2 = await _open_loop([lagged], rps, toxic_seconds)
    client.remove_toxic("bench", "bench_latency")
    for pool in (direct, proxied, lagged):
        pool.close()
    d50, p50, t50 = statistics.median(d), statistics.median(p), statistics.median(t)
    overhead = p50 - d50
    error = abs(t50 - latency_ms)
    return {
        "proxy_overhead_p50_ms": round(overhead, 3),
        "proxy_overhead_target_ms": 0.5,
        "proxy_overhead_ok": overhead <= 0.5,
        "latency_toxic_error_ms": round(error, 3),
        "latency_toxic_error_target_ms": 5.0,
        "latency_toxic_ok": error <= 5.0,
        "direct_p50_ms": round(d50, 3), "proxied_p50_ms": round(p50, 3), "latency_toxic_p50_ms": round(t50, 3),
        "direct_p99_ms": _p(d, 99), "proxied_p99_ms": _p(p, 99), "latency_toxic_p99_ms": _p(t, 99),
        "direct_samples": len(d), "proxied_samples": len(p), "latency_toxic_samples": len(t),
        "errors": err1 + err2, "rps_per_target": rps, "latency_toxic_ms": latency_ms,
    }


def run_bench(rps: float = 200.0, seconds: float = 10.0, toxic_seconds: float = 5.0,
              latency_ms: int = 100) -> dict[str, Any]:
    with spawn_echo_upstream() as upstream, spawn_proxy() as proxy, ProxyClient(proxy.value) as client:
        upstream_port = int(upstream.value)
        info = client.create_proxy("bench", f"127.0.0.1:{upstream_port}")
        loop = new_event_loop()
        try:
            result = loop.run_until_complete(
                _measure(upstream_port, info.listen_port, client, rps, seconds, toxic_seconds, latency_ms))
        finally:
            loop.close()
    result["event_loop"] = type(loop).__module__.split(".")[0]
    return result
