"""The daemon's local HTTP API (FastAPI, bound to loopback by the daemon).

Read endpoints for the CLI and the web UI, the telemetry ingest router, and the
rollout router when that subsystem is present. Every error is
`{"error": {"code", "reason", "field"}}` with a 4xx status; a bad query parameter
names the parameter. The app holds no state of its own: it asks a `DaemonView`.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from fastapi import FastAPI, Path, Query
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from samantha import __version__
from samantha.api import errors
from samantha.api.errors import ERROR_RESPONSES, install_error_handlers
from samantha.api.writers import writer_table
from samantha.core.domain import PlaybookActionKind
from samantha.cube.protocol import REQUEST_ID_PATTERN
from samantha.loop.tables import ACTION_STATUSES
from samantha.telemetry.ingest_http import make_ingest_router
from samantha.telemetry.otlp import make_otlp_router
from samantha.telemetry.store import TelemetryStore

MAX_BODY_BYTES = 1024 * 1024  # operator requests are small documents
ActionStatus = Literal[ACTION_STATUSES]  # type: ignore[valid-type]


class DaemonView(Protocol):
    store: TelemetryStore

    def status(self) -> dict[str, Any]: ...

    def incidents_list(self, status: str | None, limit: int) -> list[dict[str, Any]]: ...

    def incident(self, incident_id: str) -> dict[str, Any] | None: ...

    def actions(self, status: str | None, kind: str | None, incident: str | None, limit: int) -> list[dict[str, Any]]: ...

    def action(self, action_id: str) -> dict[str, Any] | None: ...

    def gates(self) -> dict[str, Any]: ...

    def audit_verify(self) -> dict[str, Any]: ...

    def on_ingest(self) -> None: ...

    def ingest_admit(self, writer: str, table: str, rows: int) -> float: ...

    def extra_routers(self) -> list[Any]: ...


error = errors.error  # the envelope, for callers of this module


class _Edges:
    """The operator body limit (ingest has its own, larger one) and the loop's wake-up on new telemetry.

    Pure ASGI: Starlette's `@app.middleware("http")` runs every request through task groups and memory
    streams, which at the router's push rate was a fair part of the daemon's CPU."""

    def __init__(self, app: ASGIApp, view: DaemonView) -> None:
        self.app, self.view = app, view

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        declared = next((v for k, v in scope.get("headers", []) if k == b"content-length"), b"")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES and writer_table(path) is None:
            await error(413, "too_large", f"body is larger than {MAX_BODY_BYTES} bytes")(scope, receive, send)
            return
        if scope["method"] != "POST" or not path.startswith("/v1/ingest/"):
            await self.app(scope, receive, send)
            return
        status: list[int] = []

        async def sent(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        await self.app(scope, receive, sent)
        if status == [200]:
            self.view.on_ingest()  # new telemetry: evaluate now rather than at the next tick


def make_app(view: DaemonView) -> FastAPI:
    app = FastAPI(title="samantha", version=__version__, docs_url=None, redoc_url=None, responses=ERROR_RESPONSES)

    install_error_handlers(app)
    app.state.cube_url = getattr(view, "cube_url", None)

    app.add_middleware(_Edges, view=view)

    app.include_router(make_ingest_router(view.store, admit=view.ingest_admit))
    app.include_router(make_otlp_router(view.store, admit=view.ingest_admit, on_ingest=view.on_ingest))

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"ok": True}

    @app.get("/v1/status")
    def status() -> dict[str, Any]:
        return view.status()

    @app.get("/v1/incidents")
    def incidents(status: Literal["open", "closed"] | None = Query(None, description="open or closed"),
                  limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
        return {"incidents": view.incidents_list(status, limit)}

    @app.get("/v1/incidents/{incident_id}")
    def incident(incident_id: str = Path(pattern=r"^inc-[0-9a-f]{16}$")) -> Any:
        found = view.incident(incident_id)
        return found if found is not None else error(404, "unknown_incident", f"no incident {incident_id}",
                                                     "incident_id")

    @app.get("/v1/actions")
    def actions(status: ActionStatus | None = Query(None), kind: PlaybookActionKind | None = Query(None),
                incident: str | None = Query(None, pattern=r"^inc-[0-9a-f]{16}$"),
                limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
        return {"actions": view.actions(status, kind, incident, limit)}

    @app.get("/v1/actions/{action_id}")
    def action(action_id: str = Path(pattern=REQUEST_ID_PATTERN)) -> Any:
        found = view.action(action_id)
        return found if found is not None else error(404, "unknown_action", f"no action {action_id}", "action_id")

    @app.get("/v1/gates")
    def gates() -> dict[str, Any]:
        return view.gates()

    @app.get("/v1/audit/verify")
    def audit_verify() -> Any:
        report = view.audit_verify()
        return report if report.get("ok") else JSONResponse(report, status_code=409)

    for router in view.extra_routers():
        app.include_router(router)
    return app
