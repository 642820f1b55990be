"""A standalone telemetry server: one store plus the HTTP ingest router, on loopback.

Lets the twin's router push request telemetry before the daemon exists; the daemon later
mounts the same router on its local API.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from samantha.core.clock import REAL_CLOCK, Clock
from samantha.telemetry.ingest_http import make_ingest_router
from samantha.telemetry.otlp import make_otlp_router
from samantha.telemetry.store import TelemetryStore


def make_app(store: TelemetryStore, *, close_store: bool = False) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if close_store:
                store.close()

    app = FastAPI(title="samantha telemetry", lifespan=lifespan)
    app.include_router(make_ingest_router(store))
    app.include_router(make_otlp_router(store))  # OTLP/HTTP metrics, for a Collector before the daemon runs

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/telemetry/stats")
    def stats() -> dict:
        return store.stats()

    return app


def serve(config, port: int, clock: Clock = REAL_CLOCK) -> None:
    import uvicorn

    store = TelemetryStore.open(config, clock)
    try:
        uvicorn.run(make_app(store, close_store=True), host="127.0.0.1", port=port, log_level="warning")
    finally:
        store.close()
