"""A minimal host for the rollout controller: store + ingest + rollout API on loopback + a ticker.

It stands in for the daemon (`samantha run`) in tests, the demo and the benchmarks until the
daemon mounts the same router and schedules the same tick.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType

import uvicorn

from samantha.api.rollout_routes import make_rollout_router
from samantha.clock import REAL_CLOCK, Clock
from samantha.config import SamanthaConfig
from samantha.cube.protocol import CubeRuntime
from samantha.gates.rollout_policy import RolloutPolicy
from samantha.sre.rollout import RolloutController
from samantha.sre.rollout_wiring import build_controller
from samantha.telemetry.serve import make_app
from samantha.telemetry.store import TelemetryStore


class RolloutHost:
    def __init__(self, config: SamanthaConfig, cube: CubeRuntime, port: int, *, policy: RolloutPolicy | None = None,
                 clock: Clock = REAL_CLOCK, tick_s: float = 0.1, max_step_s: float = 1800.0) -> None:
        self.store = TelemetryStore.open(config, clock)
        self.controller: RolloutController = build_controller(config, self.store, cube, policy=policy, clock=clock,
                                                              max_step_s=max_step_s)
        app = make_app(self.store)
        app.include_router(make_rollout_router(self.controller))
        self.url = f"http://127.0.0.1:{port}"
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                                     lifespan="off"))
        self._stop = threading.Event()
        self.tick_s = tick_s
        self.tick_errors: list[str] = []
        self._threads = [threading.Thread(target=self._server.run, name="rollout-api", daemon=True),
                         threading.Thread(target=self._tick_loop, name="rollout-tick", daemon=True)]

    def _tick_loop(self) -> None:
        while not self._stop.wait(self.tick_s):
            try:
                self.controller.tick()
            except Exception as e:  # noqa: BLE001 - a bad tick is reported, the loop goes on
                self.tick_errors.append(f"{type(e).__name__}: {e}")

    def __enter__(self) -> RolloutHost:
        for t in self._threads:
            t.start()
        deadline = time.monotonic() + 15
        while not self._server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        if not self._server.started:
            self.close()
            raise RuntimeError("the rollout API did not start")
        return self

    def close(self) -> None:
        self._stop.set()
        self._server.should_exit = True
        for t in self._threads:
            if t.is_alive():
                t.join(timeout=10)
        self.store.close()

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
