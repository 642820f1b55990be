"""`samantha chaos serve`: the telemetry store + ingest + chaos API on loopback, without the daemon.

Lets chaos run (and be tested) on a Cube before or without `samantha run`; the daemon
mounts the same router. It is the store's one writer while it runs. At start-up it
recovers the ledger (reverting whatever a crash left injected) before it serves.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from samantha.api.chaos_routes import make_chaos_router
from samantha.chaos.service import ChaosService
from samantha.clock import REAL_CLOCK, Clock
from samantha.config import SamanthaConfig
from samantha.telemetry.ingest_http import make_ingest_router
from samantha.telemetry.store import TelemetryStore


def make_app(store: TelemetryStore, service: ChaosService) -> FastAPI:
    app = FastAPI(title="samantha chaos host", docs_url=None, redoc_url=None)
    app.include_router(make_ingest_router(store))
    app.include_router(make_chaos_router(service))

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"ok": True, "recovery": service.last_recovery}

    return app


def _sweeper(service: ChaosService, stop: threading.Event) -> None:
    while not stop.wait(service.cc.sweep_interval_s):
        with contextlib.suppress(Exception):  # the next tick retries; a sweep must never take the host down
            service.sweep()
            if service.approvals is not None:
                service.approvals.expire_due()


def serve(config: SamanthaConfig, *, port: int | None = None, port_file: Path | None = None,
          clock: Clock = REAL_CLOCK) -> None:
    import uvicorn

    from samantha.approvals import attach_approvals

    host = config.api.host
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, config.api.port if port is None else port))
    bound = sock.getsockname()[1]
    store = TelemetryStore.open(config, clock)
    service = ChaosService(config, store, clock, api_url=f"http://{host}:{bound}")
    stop = threading.Event()
    try:
        service.recover_ledger()
        attach_approvals(service)
        threading.Thread(target=_sweeper, args=(service, stop), daemon=True, name="chaos-sweeper").start()
        if port_file is not None:
            tmp = port_file.with_suffix(".tmp")
            tmp.write_text(json.dumps({"port": bound, "pid": os.getpid()}))
            os.replace(tmp, port_file)
        server = uvicorn.Server(uvicorn.Config(make_app(store, service), log_level="warning", access_log=False))
        server.run(sockets=[sock])
    finally:
        stop.set()
        if service.approvals is not None:
            service.approvals.close()
        service.close()
        store.close()
