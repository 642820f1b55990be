"""The API's error contract: one envelope for every 4xx/5xx, declared on every route.

`{"error": {"code", "reason", "field"}}` (validation adds `problems`). `ERROR_RESPONSES` is what the
OpenAPI document declares for each route, so a generated client knows every status it can get;
`install_error_handlers` makes the app answer that way: the envelope for validation errors and
unknown routes, `Allow` on 405 (RFC 9110, the union over every route of that path), and 503 with
`Retry-After` naming the Cube's URL when the Cube is unreachable, never a 500.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from samantha.cube.protocol import CubeError

CUBE_RETRY_AFTER_S = 5


class Problem(BaseModel):
    field: str
    reason: str


class ErrorBody(BaseModel):
    code: str
    reason: str
    field: str | None = None
    problems: list[Problem] | None = None


class ErrorEnvelope(BaseModel):
    model_config = {"extra": "allow"}
    error: ErrorBody


_WHAT = {400: "malformed request", 401: "no or unknown credential", 403: "credential lacks the role",
         404: "no such resource or route", 405: "method not allowed (see Allow)", 409: "refused in this state",
         413: "body too large", 422: "invalid input (field names it)", 429: "rate limited (see Retry-After)",
         503: "a dependency (the Cube, the hub) is unreachable (see Retry-After)"}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorEnvelope, "description": what, "content": {"application/json": {}}}
    for code, what in _WHAT.items()}  # JSON even on routes whose success is text or Parquet


def error(status: int, code: str, reason: str, field: str | None = None,
          headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "reason": reason, "field": field}}, status_code=status,
                        headers=headers)


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("query", "path", "body", "header"):
        parts = parts[1:]
    return ".".join(parts)


def allowed_methods(app: Any, scope: dict[str, Any]) -> list[str]:
    methods: set[str] = set()
    for route in app.router.routes:
        match, _ = route.matches({**scope, "method": "GET"})
        if match != Match.NONE and getattr(route, "methods", None):
            methods |= set(route.methods)
        elif match != Match.NONE:  # a mount or a route that takes every method
            match_any, _ = route.matches(scope)
            if match_any == Match.FULL:
                methods.add(scope["method"])
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errs = exc.errors()
        first = errs[0] if errs else {"loc": (), "msg": "invalid request"}
        # not JSON at all (or sent without a JSON content type): the same 400 as every hand-parsed body
        raw = tuple(first["loc"]) == ("body",) and isinstance(first.get("input"), bytes | str)
        if first.get("type") == "json_invalid" or raw:
            why = (first.get("ctx") or {}).get("error") or first["msg"]
            return JSONResponse({"error": {"code": "bad_json", "field": "body",
                                           "reason": f"body is not a JSON object: {why}"[:500]}}, status_code=400)
        body = {"error": {"code": "invalid", "field": _field(first["loc"]), "reason": str(first["msg"])[:500],
                          "problems": [{"field": _field(e["loc"]), "reason": str(e["msg"])[:500]} for e in errs[:20]]}}
        return JSONResponse(body, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        path = request.url.path[:200]
        if exc.status_code == 404:
            return error(404, "not_found", f"no route {request.method[:20]} {path}")
        if exc.status_code == 405:
            allow = ", ".join(allowed_methods(request.app, request.scope))
            return error(405, "method_not_allowed", f"{request.method[:20]} is not allowed on {path}; use {allow}",
                         headers={"Allow": allow})
        if exc.status_code == 400:
            return error(400, "bad_request", str(exc.detail)[:500])
        return error(exc.status_code, "http_error", str(exc.detail)[:500], headers=dict(exc.headers or {}))

    @app.exception_handler(CubeError)
    async def _cube(request: Request, exc: CubeError) -> JSONResponse:
        url = getattr(request.app.state, "cube_url", None) or "the Cube"
        if exc.code == "unreachable" or exc.status == 0 or exc.status >= 500:
            return error(503, "cube_unreachable", f"the Cube at {url} is unreachable or failing: {exc.reason}"[:500],
                         headers={"Retry-After": str(CUBE_RETRY_AFTER_S)})
        return error(409, exc.code, f"the Cube at {url} refused: {exc.reason}"[:500], exc.field)
