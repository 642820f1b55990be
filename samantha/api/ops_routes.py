"""Operator read endpoints the daemon mounts: `/metrics`, `/v1/dora`, `/v1/report.html`, `/v1/auth/whoami`.

All of them need at least a viewer (the auth middleware enforces it; Prometheus scrapes with a
bearer token). Handlers are sync: FastAPI runs them in its thread pool, off the event loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse, JSONResponse, Response

from samantha.api import metrics
from samantha.api.auth import Principal, require

Reader = Callable[[str, Any], Any]


def _window(since: float | None, until: float | None) -> tuple[float, float] | JSONResponse:
    u = time.time() if until is None else until
    s = u - 7 * 86400 if since is None else since
    if u <= s:
        return JSONResponse({"error": {"code": "invalid", "reason": "until must be after since", "field": "until"}},
                            status_code=422)
    return s, u


def make_ops_router(read: Reader, *, cube: str = "") -> APIRouter:
    router = APIRouter(tags=["ops"])

    @router.get("/metrics")
    def prometheus(_: Principal = Depends(require("viewer"))) -> Response:
        return Response(metrics.METRICS.render(), media_type=metrics.CONTENT_TYPE)

    @router.get("/v1/dora")
    def dora(since: float | None = Query(None, description="epoch s; default 7 days before until"),
             until: float | None = Query(None, description="epoch s; default now"),
             _: Principal = Depends(require("viewer"))) -> Any:
        from samantha.reporting.dora import local_dora

        w = _window(since, until)
        return w if isinstance(w, JSONResponse) else local_dora(read, *w)

    @router.get("/v1/report.html")
    def report(since: float | None = Query(None), until: float | None = Query(None),
               _: Principal = Depends(require("viewer"))) -> Any:
        from samantha.reporting.report import build, render

        w = _window(since, until)
        return w if isinstance(w, JSONResponse) else HTMLResponse(render(build(read, *w, cube=cube)))

    @router.get("/v1/auth/whoami")
    def whoami(p: Principal = Depends(require("viewer"))) -> dict[str, Any]:
        return {"name": p.name, "role": p.role.name, "via": p.via}

    return router
