"""`/v1/rollout/*`: start, status and abort a progressive rollout through the daemon.

Errors are `{"error": {"code", "reason", "field"}}` with a 4xx status, like the Cube's API.
Handlers are sync: FastAPI runs them in its thread pool, so a Cube call never blocks the loop.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from samantha.api.errors import error
from samantha.cube.protocol import REQUEST_ID_PATTERN
from samantha.rollout.bundle_check import BundleRejected
from samantha.rollout.controller import RolloutController, RolloutRefused


class StartRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    bundle: str = Field(min_length=1, max_length=4096, description="bundle directory, or >= 8 hex digits of its id")
    request_id: str = Field(pattern=REQUEST_ID_PATTERN)


class AbortRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=1000)


def make_rollout_router(controller: RolloutController) -> APIRouter:
    router = APIRouter(prefix="/v1/rollout", tags=["rollout"])

    @router.post("/start")
    async def start(req: StartRequest) -> Any:
        try:
            st = await run_in_threadpool(controller.start, req.bundle, req.request_id)  # type: ignore[attr-defined]
        except BundleRejected as e:
            return error(422 if e.kind != "not_found" else 404, e.kind, e.reason, "bundle")
        except RolloutRefused as e:
            return error(e.status, e.code, e.reason, e.field)
        except OSError as e:  # a path the file system cannot even look up (too long, bad bytes)
            return error(404, "not_found", f"no bundle at that path: {e.strerror}", "bundle")
        return JSONResponse(st.model_dump(mode="json"), status_code=200 if st.phase != "failed" else 409)

    @router.get("/status")
    def status() -> Any:
        return JSONResponse(controller.status().model_dump(mode="json"))

    @router.post("/abort")
    async def abort(req: AbortRequest) -> Any:
        try:
            st = await run_in_threadpool(controller.abort, req.reason)  # type: ignore[attr-defined]
        except RolloutRefused as e:
            return error(e.status, e.code, e.reason, e.field)
        return JSONResponse(st.model_dump(mode="json"))

    return router
