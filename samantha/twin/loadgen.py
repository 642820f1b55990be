"""Open-loop load generator: N requests per second of synthetic sensor vectors.

Open loop (requests leave on schedule whether or not earlier ones returned), so a
slow Cube shows up as latency and errors rather than as a politely lower rate.
`shift` moves the input distribution (drift). Stats come in one-second windows.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from samantha.twin.http import (
    HttpServer,
    Request,
    Response,
    Upstream,
    UpstreamError,
    error_response,
    install_uvloop,
    json_response,
    write_port_file,
)
from samantha.twin.model import synthetic_inputs

POOL = 512
TICK_S = 0.005


@dataclass
class Window:
    start: float  # seconds since the generator started
    sent: int = 0
    ok: int = 0
    failed: int = 0
    latencies: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        lat = np.asarray(self.latencies) if self.latencies else None
        return {"t": round(self.start, 3), "sent": self.sent, "ok": self.ok, "failed": self.failed,
                "p50_ms": round(float(np.percentile(lat, 50)), 3) if lat is not None else None,
                "p99_ms": round(float(np.percentile(lat, 99)), 3) if lat is not None else None}


class LoadGen:
    def __init__(self, host: str, port: int, *, rps: float, shift: float = 0.0, seed: int = 0,
                 max_inflight: int = 2000, timeout_s: float = 5.0, v2_model: str | None = None):
        self.target = Upstream(host, port, max_idle=max_inflight)
        # the twin's router takes {"x": [...]} on /infer; a real open-inference Cube (Triton) takes KServe V2
        self.v2_model = v2_model
        self.path = f"/v2/models/{v2_model}/infer" if v2_model else "/infer"
        self.rps, self.timeout_s, self.max_inflight = rps, timeout_s, max_inflight
        self.rng = np.random.default_rng(seed)
        self.set_shift(shift)
        self.t0 = time.monotonic()
        self.sent = self.ok = self.failed = self.skipped = self.inflight = 0
        self.statuses: Counter[str] = Counter()
        self.windows: deque[Window] = deque(maxlen=600)
        self.windows.append(Window(0.0))

    def set_shift(self, shift: float) -> None:
        self.shift = shift
        x, _ = synthetic_inputs(self.rng, POOL, shift)
        self.bodies = [orjson.dumps(self._body(row.tolist())) for row in x]

    def _body(self, row: list[float]) -> dict[str, Any]:
        if self.v2_model is None:
            return {"x": row}
        return {"inputs": [{"name": "x", "shape": [len(row)], "datatype": "FP32", "data": row}]}

    def _window(self) -> Window:
        now = time.monotonic() - self.t0
        w = self.windows[-1]
        if now - w.start >= 1.0:
            w = Window(w.start + (now - w.start) // 1.0)
            self.windows.append(w)
        return w

    async def _one(self, body: bytes) -> None:
        self.inflight += 1
        t = time.perf_counter()
        try:
            status, _ = await self.target.request("POST", self.path, body, timeout=self.timeout_s)
            key = str(status)
        except UpstreamError as e:
            status, key = 0, "timeout" if "timed out" in str(e) else "connection"
        finally:
            self.inflight -= 1
        w = self._window()
        self.statuses[key] += 1
        if status == 200:
            self.ok += 1
            w.ok += 1
            w.latencies.append((time.perf_counter() - t) * 1000)
        else:
            self.failed += 1
            w.failed += 1

    async def run(self, duration_s: float | None = None) -> None:
        loop = asyncio.get_running_loop()
        start = time.monotonic()
        due = 0.0
        i = 0
        while duration_s is None or time.monotonic() - start < duration_s:
            await asyncio.sleep(TICK_S)
            now = time.monotonic()
            due += self.rps * (now - getattr(self, "_last", now))
            self._last = now
            n = int(due)
            due -= n
            for _ in range(n):
                if self.inflight >= self.max_inflight:
                    self.skipped += 1
                    continue
                i = (i + 1) % POOL
                self.sent += 1
                self._window().sent += 1
                loop.create_task(self._one(self.bodies[i]))

    def stats(self, last: int = 10) -> dict[str, Any]:
        return {"rps": self.rps, "shift": self.shift, "sent": self.sent, "ok": self.ok, "failed": self.failed,
                "skipped": self.skipped, "inflight": self.inflight, "statuses": dict(self.statuses),
                "uptime_s": round(time.monotonic() - self.t0, 3),
                "windows": [w.summary() for w in list(self.windows)[-last:]]}

    async def handle(self, req: Request) -> Response:
        if req.path == "/stats":
            last = 10
            if req.query.startswith("last="):
                last = max(1, min(600, int(req.query[5:] or 10)))
            return json_response(self.stats(last))
        if req.path == "/config" and req.method == "POST":
            try:
                doc = orjson.loads(req.body)
                rps = float(doc.get("rps", self.rps))
                shift = float(doc.get("shift", self.shift))
            except (orjson.JSONDecodeError, TypeError, ValueError, AttributeError):
                return error_response(400, "bad_request", 'body must be {"rps": number, "shift": number}')
            if not (0 <= rps <= 20_000) or not (-50 <= shift <= 50):
                return error_response(422, "invalid", "rps must be in [0, 20000] and shift in [-50, 50]")
            self.rps = rps
            if shift != self.shift:
                self.set_shift(shift)
            return json_response({"rps": self.rps, "shift": self.shift})
        if req.path == "/health":
            return json_response({"ok": True})
        return error_response(404, "not_found", f"no route {req.path}")


async def serve(args: argparse.Namespace) -> None:
    host, _, port = args.target.rpartition(":")
    gen = LoadGen(host or "127.0.0.1", int(port), rps=args.rps, shift=args.shift, seed=args.seed,
                  v2_model=args.v2_model)
    server = HttpServer(gen.handle)
    port = await server.start(args.host, args.port)
    write_port_file(args.port_file, {"loadgen_port": port})
    loop = asyncio.get_running_loop()
    task = loop.create_task(gen.run())
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"loadgen -> {args.target} at {args.rps} rps; control on {args.host}:{port}", flush=True)
    await stop.wait()
    task.cancel()
    await server.close(drain_s=0.2)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m samantha.twin.loadgen")
    ap.add_argument("--target", required=True, help="router host:port")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True, help="control port")
    ap.add_argument("--rps", type=float, default=50)
    ap.add_argument("--shift", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--port-file", help="write the bound port here (JSON)")
    ap.add_argument("--v2-model", help="send KServe V2 requests to this model (a real open-inference Cube)")
    args = ap.parse_args(argv)
    install_uvloop()
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
