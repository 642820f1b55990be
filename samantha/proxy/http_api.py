"""The Toxiproxy v2 control API (Starlette), bound to a Registry.

Routes, status codes and error bodies follow Toxiproxy: 201 on proxy create and populate,
200 on toxic create, 204 on deletes and reset, and `{"error": ..., "status": ...}` bodies.
Updates accept POST (what the Python clients send) and PATCH (what Toxiproxy now prefers).
Toxic documents are read as toxiproxy-server reads them unless the request carries
`X-Samantha-Strict: 1` (Samantha's own client always does) or the server runs `--strict`.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from samantha.proxy.registry import ApiError, Registry

TOXIPROXY_API_VERSION = "2.12.0"  # the Toxiproxy API level this server speaks
MAX_BODY = 1 << 20
STRICT_HEADER = "X-Samantha-Strict"


def _strict(request: Request) -> bool:
    return request.headers.get(STRICT_HEADER, "").strip().lower() in {"1", "true", "yes"}


def _error(message: str, status: int) -> Response:
    """As Go's `http.Error` sends apiError's JSON: compact, a newline, text/plain, nosniff."""
    body = json.dumps({"error": message, "status": status}, separators=(",", ":")) + "\n"
    return Response(body, status_code=status, media_type="text/plain; charset=utf-8",
                    headers={"X-Content-Type-Options": "nosniff"})


async def _json_body(request: Request, *, optional: bool = False) -> Any:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise ApiError(f"bad request body: larger than {MAX_BODY} bytes", 413)
    if not raw.strip():
        if optional:
            return {}
        raise ApiError("bad request body: EOF", 400)
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise ApiError(f"bad request body: invalid JSON: {e}", 400) from None


def build_app(registry: Registry) -> Starlette:
    async def version(request: Request) -> Response:
        return JSONResponse({"version": TOXIPROXY_API_VERSION, "server": "samantha-proxy"})

    async def proxy_index(request: Request) -> Response:
        return JSONResponse(registry.list_json())

    async def proxy_create(request: Request) -> Response:
        return JSONResponse(await registry.create(await _json_body(request)), status_code=201)

    async def populate(request: Request) -> Response:
        try:
            proxies = await registry.populate(await _json_body(request))
        except ApiError as e:
            return JSONResponse({**e.body(), "proxies": []}, status_code=e.status)
        return JSONResponse({"proxies": proxies}, status_code=201)

    async def proxy_show(request: Request) -> Response:
        return JSONResponse(registry.get(request.path_params["proxy"]).to_json())

    async def proxy_update(request: Request) -> Response:
        body = await _json_body(request)
        return JSONResponse(await registry.update(request.path_params["proxy"], body))

    async def proxy_delete(request: Request) -> Response:
        await registry.delete(request.path_params["proxy"])
        return Response(status_code=204)

    async def reset(request: Request) -> Response:
        await registry.reset()
        return Response(status_code=204)

    async def toxic_index(request: Request) -> Response:
        return JSONResponse(registry.get(request.path_params["proxy"]).toxic_list())

    async def toxic_create(request: Request) -> Response:
        body = await _json_body(request)
        return JSONResponse(await registry.toxic_create(request.path_params["proxy"], body,
                                                        strict=_strict(request)))

    async def toxic_show(request: Request) -> Response:
        p = request.path_params
        return JSONResponse(registry.toxic_get(p["proxy"], p["toxic"]).to_json())

    async def toxic_update(request: Request) -> Response:
        p = request.path_params
        body = await _json_body(request)
        return JSONResponse(await registry.toxic_update(p["proxy"], p["toxic"], body, strict=_strict(request)))

    async def toxic_delete(request: Request) -> Response:
        p = request.path_params
        await registry.toxic_delete(p["proxy"], p["toxic"])
        return Response(status_code=204)

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return _error(exc.message, exc.status)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        reason = {404: "route not found", 405: "method not allowed"}.get(exc.status_code, str(exc.detail))
        return _error(f"{reason}: {request.method} {request.url.path}", exc.status_code)

    routes = [
        Route("/version", version, methods=["GET"]),
        Route("/reset", reset, methods=["POST"]),
        Route("/populate", populate, methods=["POST"]),
        Route("/proxies", proxy_index, methods=["GET"]),
        Route("/proxies", proxy_create, methods=["POST"]),
        Route("/proxies/{proxy}", proxy_show, methods=["GET"]),
        Route("/proxies/{proxy}", proxy_update, methods=["POST", "PATCH"]),
        Route("/proxies/{proxy}", proxy_delete, methods=["DELETE"]),
        Route("/proxies/{proxy}/toxics", toxic_index, methods=["GET"]),
        Route("/proxies/{proxy}/toxics", toxic_create, methods=["POST"]),
        Route("/proxies/{proxy}/toxics/{toxic}", toxic_show, methods=["GET"]),
        Route("/proxies/{proxy}/toxics/{toxic}", toxic_update, methods=["POST", "PATCH"]),
        Route("/proxies/{proxy}/toxics/{toxic}", toxic_delete, methods=["DELETE"]),
    ]
    return Starlette(routes=routes, exception_handlers={ApiError: api_error, HTTPException: http_error})
