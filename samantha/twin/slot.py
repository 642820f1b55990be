"""A slot server: one process serving one bundle.

POST /infer computes the model for real and applies the bundle's fault profile
(plus any runtime degradation overlay). POST /load swaps the bundle with a
graceful drain: requests started on the old bundle finish on it; new ones get the
new bundle; the call returns once the old generation has drained.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson
import psutil
from pydantic import ValidationError

from samantha.cube.bundle import BundleError, VerifiedBundle, load_trusted_keys
from samantha.cube.fault_profile import FaultProfile
from samantha.twin.http import (
    HttpServer,
    Request,
    Response,
    error_response,
    install_uvloop,
    json_response,
    write_port_file,
)
from samantha.twin.model import N_FEATURES, SensorModel
from samantha.twin.toy_bundle import bundle_model, verify_toy_bundle

CRASH_EXIT = 70


@dataclass
class Generation:
    bundle: VerifiedBundle
    model: SensorModel
    profile: FaultProfile
    loaded_at: float
    inflight: int = 0


class SlotServer:
    def __init__(self, name: str, trusted_path: Path, state_file: Path | None, *,
                 drain_timeout_s: float = 10.0, leak_cap_mb: float = 256.0):
        self.name = name
        self.trusted_path = trusted_path
        self.state_file = state_file
        self.drain_timeout_s = drain_timeout_s
        self.leak_cap_mb = leak_cap_mb
        self.gen: Generation | None = None
        self.overlay = FaultProfile()
        self.served = 0
        self._leak: list[bytearray] = []
        self._crash: asyncio.TimerHandle | None = None
        self._load_lock = asyncio.Lock()
        self.server = HttpServer(self.handle)

    # -- bundle lifecycle --------------------------------------------------
    def _verify(self, path: str) -> VerifiedBundle:
        return verify_toy_bundle(path, load_trusted_keys(self.trusted_path))

    async def load(self, path: str) -> dict:
        async with self._load_lock:
            vb = self._verify(path)
            model = bundle_model(vb)
            for _ in range(8):  # warm caches before the first real request, as a serving runtime would
                model.predict(np.zeros(N_FEATURES, dtype=np.float32))
            new = Generation(vb, model, vb.profile, time.time())
            old, self.gen = self.gen, new  # one assignment: each request sees old or new, never a mix
            self._leak.clear()
            self._arm_crash(vb.profile)
            t0 = time.monotonic()
            while old is not None and old.inflight and time.monotonic() - t0 < self.drain_timeout_s:
                await asyncio.sleep(0.005)
            if self.state_file is not None:
                tmp = self.state_file.with_suffix(".tmp")
                tmp.write_text(json.dumps({"bundle_path": str(vb.path)}))
                os.replace(tmp, self.state_file)
            return {"bundle_id": vb.bundle_id, "label": vb.manifest.label,
                    "drained_ms": round((time.monotonic() - t0) * 1000, 3),
                    "undrained": old.inflight if old else 0}

    def _arm_crash(self, profile: FaultProfile) -> None:
        if self._crash is not None:
            self._crash.cancel()
            self._crash = None
        if profile.crash_after_s:
            self._crash = asyncio.get_running_loop().call_later(profile.crash_after_s, os._exit, CRASH_EXIT)

    def effective_profile(self) -> FaultProfile:
        assert self.gen is not None
        return self.gen.profile.overlay(self.overlay) if not self.overlay.is_clean() else self.gen.profile

    async def leak_loop(self) -> None:
        step_s = 0.1
        while True:
            await asyncio.sleep(step_s)
            gen = self.gen
            rate = self.effective_profile().leak_mb_per_s if gen else 0.0
            held = sum(len(b) for b in self._leak) / 2**20
            if rate and held < self.leak_cap_mb:
                n = int(min(rate * step_s, self.leak_cap_mb - held) * 2**20)
                self._leak.append(bytearray(b"\x01") * n)  # touched pages: real RSS growth

    # -- HTTP ----------------------------------------------------------------
    async def handle(self, req: Request) -> Response:
        if req.path == "/infer" and req.method == "POST":
            return await self.infer(req.body)
        if req.path == "/health" and req.method == "GET":
            return self.health()
        if req.path == "/load" and req.method == "POST":
            try:
                path = orjson.loads(req.body)["path"]
                if not isinstance(path, str):
                    raise TypeError
            except (orjson.JSONDecodeError, KeyError, TypeError):
                return error_response(400, "bad_request", 'body must be {"path": "<bundle dir>"}', "path")
            try:
                return json_response(await self.load(path))
            except BundleError as e:
                return error_response(422, e.kind, str(e), "path")
        if req.path == "/degrade" and req.method == "POST":
            try:
                self.overlay = FaultProfile.model_validate_json(req.body or b"{}")
            except ValidationError as e:
                err = e.errors()[0]
                return error_response(422, "invalid", err["msg"], ".".join(map(str, err["loc"])))
            return json_response({"overlay": self.overlay.model_dump(), "knobs": self.overlay.active_knobs()})
        if req.path in ("/infer", "/health", "/load", "/degrade"):
            return error_response(405, "method_not_allowed", f"{req.method} not allowed on {req.path}")
        return error_response(404, "not_found", f"no route {req.path}")

    def health(self) -> Response:
        gen = self.gen
        proc = psutil.Process()
        cpu = proc.cpu_times()
        body = {"ok": gen is not None, "slot": self.name, "served": self.served,
                "rss_mb": round(proc.memory_info().rss / 2**20, 1), "rss_bytes": proc.memory_info().rss,
                "cpu_s": cpu.user + cpu.system}
        if gen is None:
            return json_response({**body, "reason": "no bundle loaded"}, 503)
        return json_response({**body, "bundle_id": gen.bundle.bundle_id, "label": gen.bundle.manifest.label,
                              "fault_knobs": self.effective_profile().active_knobs(),
                              "expires_at": gen.bundle.manifest.expires_at.timestamp(),
                              "loaded_at": gen.loaded_at, "inflight": gen.inflight})

    async def infer(self, body: bytes) -> Response:
        gen = self.gen
        if gen is None:
            return error_response(503, "no_bundle", "no bundle loaded")
        try:
            x = np.asarray(orjson.loads(body)["x"], dtype=np.float32)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return error_response(400, "bad_request", 'body must be {"x": [numbers]}', "x")
        if x.shape != (N_FEATURES,) or not np.all(np.isfinite(x)):
            return error_response(422, "invalid", f"x must be {N_FEATURES} finite numbers", "x")
        gen.inflight += 1
        t0 = time.perf_counter()
        try:
            p = self.effective_profile() if not self.overlay.is_clean() else gen.profile
            if p.cpu_burn:
                end = time.perf_counter() + p.cpu_burn / 1000
                while time.perf_counter() < end:
                    pass
            delay = p.latency_ms + (random.random() * p.jitter_ms if p.jitter_ms else 0.0)
            if delay:
                await asyncio.sleep(delay / 1000)
            if p.error_rate and random.random() < p.error_rate:
                return error_response(500, "model_error", "injected inference failure")
            probs = gen.model.predict(x, p.output_bias)
            if p.nan_rate and random.random() < p.nan_rate:
                probs = np.full_like(probs, math.nan)
            self.served += 1
            return Response(200, orjson.dumps({"probs": probs.tolist(), "cls": int(np.nanargmax(probs))
                                               if np.isfinite(probs).all() else -1, "bundle": gen.bundle.bundle_id,
                                               "service_ms": round((time.perf_counter() - t0) * 1000, 3)}))
        finally:
            gen.inflight -= 1


async def serve(args: argparse.Namespace) -> None:
    state_file = Path(args.state_file) if args.state_file else None
    slot = SlotServer(args.name, Path(args.trusted), state_file,
                      drain_timeout_s=args.drain_timeout, leak_cap_mb=args.leak_cap_mb)
    initial = args.bundle
    if state_file is not None and state_file.exists():  # after a restart, serve what was last loaded
        initial = json.loads(state_file.read_text()).get("bundle_path") or initial
    if initial:
        try:
            await slot.load(initial)
        except BundleError as e:
            print(f"slot {args.name}: initial bundle refused: {e}", flush=True)
    port = await slot.server.start(args.host, args.port)
    write_port_file(args.port_file, {"port": port})
    leak = asyncio.get_running_loop().create_task(slot.leak_loop())
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    print(f"slot {args.name} listening on {args.host}:{port}", flush=True)
    await stop.wait()
    leak.cancel()
    await slot.server.close(drain_s=2.0)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m samantha.twin.slot")
    ap.add_argument("--name", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--trusted", required=True, help="trusted publisher keys (dir of PEM *.pem/*.pub, or one PEM file)")
    ap.add_argument("--bundle", help="bundle to load at start (unless the state file names one)")
    ap.add_argument("--state-file")
    ap.add_argument("--port-file", help="write the bound port here (JSON)")
    ap.add_argument("--drain-timeout", type=float, default=10.0)
    ap.add_argument("--leak-cap-mb", type=float, default=256.0)
    args = ap.parse_args(argv)
    install_uvloop()
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
