"""`/v1/rollout/*`: start, status and abort a progressive rollout through the daemon.

Errors are `{"error": {"code", "reason", "field"}}` with a 4xx status, like the Cube's API.
Handlers are sync: FastAPI runs them in its thread pool, so a Cube call never blocks the loop.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from samantha.cube.protocol import REQUEST_ID_PATTERN
from samantha.rollout.bundle_check import BundleRejected
from samantha.rollout.controller import RolloutController, RolloutRefused

MAX_BODY = 64 * 1024


class StartRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    bundle: str = Field(min_length=1, max_length=4096, description="bundle directory, or >= 8 hex digits of its id")
    request_id: str = Field(pattern=REQUEST_ID_PATTERN)


class AbortRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=1000)


def error(status: int, code: str, reason: str, field: str | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "reason": reason, "field": field}}, status_code=status)


async def _parse(request: Request, model: type[BaseModel]) -> BaseModel | JSONResponse:
    body = await request.body()
    if len(body) > MAX_BODY:
        return error(413, "too_large", f"body is larger than {MAX_BODY} bytes")
    try:
        raw: Any = orjson.loads(body or b"null")
    except orjson.JSONDecodeError as e:
        return error(400, "bad_json", f"body is not JSON: {e}")
    if not isinstance(raw, dict):
        return error(400, "bad_json", "body must be a JSON object")
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        return error(422, "invalid", err["msg"], ".".join(map(str, err["loc"])) or None)


def make_rollout_router(controller: RolloutController) -> APIRouter:
    router = APIRouter(prefix="/v1/rollout", tags=["rollout"])

    @router.post("/start")
    async def start(request: Request) -> Any:
        req = await _parse(request, StartRequest)
        if isinstance(req, JSONResponse):
            return req
        try:
            st = await run_in_threadpool(controller.start, req.bundle, req.request_id)  # type: ignore[attr-defined]
        except BundleRejected as e:
            return error(422 if e.kind != "not_found" else 404, e.kind, e.reason, "bundle")
        except RolloutRefused as e:
            return error(e.status, e.code, e.reason, e.field)
        return JSONResponse(st.model_dump(mode="json"), status_code=200 if st.phase != "failed" else 409)

    @router.get("/status")
    def status() -> Any:
        return JSONResponse(controller.status().model_dump(mode="json"))

    @router.post("/abort")
    async def abort(request: Request) -> Any:
        req = await _parse(request, AbortRequest)
        if isinstance(req, JSONResponse):
            return req
        try:
            st = await run_in_threadpool(controller.abort, req.reason)  # type: ignore[attr-defined]
        except RolloutRefused as e:
            return error(e.status, e.code, e.reason, e.field)
        return JSONResponse(st.model_dump(mode="json"))

    return router
