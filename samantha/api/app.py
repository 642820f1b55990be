"""The daemon's local HTTP API (FastAPI, bound to loopback by the daemon).

Read endpoints for the CLI and the web UI, the telemetry ingest router, and the
rollout router when that subsystem is present. Every error is
`{"error": {"code", "reason", "field"}}` with a 4xx status; a bad query parameter
names the parameter. The app holds no state of its own: it asks a `DaemonView`.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from fastapi import FastAPI, Path, Query, Request
from fastapi.responses import JSONResponse

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


def make_app(view: DaemonView) -> FastAPI:
    app = FastAPI(title="samantha", version=__version__, docs_url=None, redoc_url=None, responses=ERROR_RESPONSES)

    install_error_handlers(app)
    app.state.cube_url = getattr(view, "cube_url", None)

    @app.middleware("http")
    async def _body_limit(request: Request, call_next: Any) -> Any:
        declared = request.headers.get("content-length", "")
        if (declared.isdigit() and int(declared) > MAX_BODY_BYTES
                and writer_table(request.url.path) is None):  # ingest has its own, larger limit
            return error(413, "too_large", f"body is larger than {MAX_BODY_BYTES} bytes")
        return await call_next(request)

    @app.middleware("http")
    async def _wake_on_ingest(request: Request, call_next: Any) -> Any:
        response = await call_next(request)
        if request.method == "POST" and request.url.path.startswith("/v1/ingest/") and response.status_code == 200:
            view.on_ingest()  # new telemetry: evaluate now rather than at the next tick
        return response

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
