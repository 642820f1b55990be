"""Operator read endpoints the daemon mounts: `/metrics`, `/v1/dora`, `/v1/report.html`, `/v1/auth/whoami`,
`/v1/export/{table}`.

All of them need at least a viewer (the auth middleware enforces it; Prometheus scrapes with a
bearer token); the export needs an admin. Handlers are sync: FastAPI runs them in its thread pool,
off the event loop.

`GET /v1/export/{table}?since=&until=` (admin) is the daemon's records in a time window as Parquet,
while the daemon runs (it is the one writer of its DuckDB file, so nobody else can open it): the raw
telemetry (`requests`, `samples`, `events`), the 1-minute rollups, and the decision records (`actions`,
`incidents`, `rollouts`), each filtered on its own time column (`EXPORT_TABLES`), flushed first so
the window includes what was ingested up to the call. It is for backtests of playbooks and gates on
real traffic, and for offline analysis; the harness's scenario runner uses it to measure a daemon it
must not stop (`samantha twin scenario run --attach`). It reads only; scoring stays in the harness.
Answers `application/vnd.apache.parquet` with `X-Samantha-Rows`; 404 `unknown_table` for a table this
daemon does not keep (no rollout controller: no `rollouts`); 413 `too_large` past 2M rows.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

from samantha.api import metrics
from samantha.api.auth import Principal, require
from samantha.telemetry.export import ExportTooLarge, window_parquet

Reader = Callable[[str, Any], Any]

# table -> its time column: what `/v1/export/{table}` serves (the names go into SQL: this is the allow-list)
EXPORT_TABLES: dict[str, str] = {
    "requests": "ts", "samples": "ts", "events": "ts", "requests_1m": "bucket", "samples_1m": "bucket",
    "actions": "created_ts", "incidents": "opened_ts", "rollouts": "ts",
}
PARQUET = "application/vnd.apache.parquet"


def _window(since: float | None, until: float | None) -> tuple[float, float] | JSONResponse:
    u = time.time() if until is None else until
    s = u - 7 * 86400 if since is None else since
    if u <= s:
        return JSONResponse({"error": {"code": "invalid", "reason": "until must be after since", "field": "until"}},
                            status_code=422)
    return s, u


def _error(status: int, code: str, reason: str, field: str | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "reason": reason, "field": field}}, status_code=status)


def make_ops_router(read: Reader, *, cube: str = "", flush: Callable[[], None] | None = None) -> APIRouter:
    """`flush`: commits the store's write buffer (an export then includes what was ingested up to the call)."""
    router = APIRouter(tags=["ops"])

    @router.get("/metrics", response_class=PlainTextResponse,
                responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text exposition"}})
    def prometheus(_: Principal = Depends(require("viewer"))) -> Response:
        return Response(metrics.METRICS.render(), media_type=metrics.CONTENT_TYPE)

    @router.get("/v1/dora")
    def dora(since: float | None = Query(None, ge=0, le=1e11, description="epoch s; default 7 days before until"),
             until: float | None = Query(None, ge=0, le=1e11, description="epoch s; default now; after since"),
             _: Principal = Depends(require("viewer"))) -> Any:
        from samantha.reporting.dora import local_dora

        w = _window(since, until)
        return w if isinstance(w, JSONResponse) else local_dora(read, *w)

    @router.get("/v1/report.html", response_class=HTMLResponse)
    def report(since: float | None = Query(None, ge=0, le=1e11), until: float | None = Query(None, ge=0, le=1e11),
               _: Principal = Depends(require("viewer"))) -> Any:
        from samantha.reporting.report import build, render

        w = _window(since, until)
        return w if isinstance(w, JSONResponse) else HTMLResponse(render(build(read, *w, cube=cube)))

    @router.get("/v1/export/{table}", response_class=Response,
                responses={200: {"content": {PARQUET: {}}, "description": "the window as Parquet"}})
    def export(table: str = Path(pattern=r"^[a-z0-9_]+$", description=", ".join(EXPORT_TABLES)),
               since: float | None = Query(None, ge=0, le=1e11, description="epoch s, inclusive; default 7 days before until"),
               until: float | None = Query(None, ge=0, le=1e11, description="epoch s, exclusive; default now"),
               _: Principal = Depends(require("admin"))) -> Any:
        if table not in EXPORT_TABLES:
            return _error(404, "unknown_table", f"{table} is not exported; one of {', '.join(EXPORT_TABLES)}",
                          "table")
        w = _window(since, until)
        if isinstance(w, JSONResponse):
            return w
        if not read("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table]).column(0)[0].as_py():
            return _error(404, "unknown_table", f"this daemon keeps no {table} table", "table")
        if flush is not None:
            flush()
        try:
            body, rows = window_parquet(read, table, EXPORT_TABLES[table], *w)
        except ExportTooLarge as e:
            return _error(413, "too_large", str(e), "since")
        return Response(body, media_type=PARQUET, headers={"X-Samantha-Rows": str(rows),
                                                           "Content-Disposition": f'attachment; filename="{table}.parquet"'})

    @router.get("/v1/auth/whoami")
    def whoami(p: Principal = Depends(require("viewer"))) -> dict[str, Any]:
        return {"name": p.name, "role": p.role.name, "via": p.via}

    return router
