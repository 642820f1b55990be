"""Local API of the uplink: status, force sync, the policy module, operator documents.

    GET  /v1/uplink/status      outbox, last sync, policy module, safe mode, drift SLOs
    POST /v1/uplink/sync        sync now, whatever the backoff
    GET  /v1/uplink/policy      the module in force
    POST /v1/uplink/policy      offer a signed module (offline provisioning); 409 with the reason if refused
    POST /v1/uplink/operator    a signed safe-mode override or approval decision; 409 if refused
    GET  /v1/uplink/decisions   operator documents received, accepted or refused, with reasons
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Query
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool


def make_uplink_router(service: Any) -> APIRouter:
    r = APIRouter(prefix="/v1/uplink")

    @r.get("/status")
    async def status() -> dict[str, Any]:
        return await run_in_threadpool(service.status)

    @r.post("/sync")
    async def sync(max_seconds: float | None = Query(None, gt=0, le=3600)) -> dict[str, Any]:
        return await run_in_threadpool(service.force_sync, None, max_seconds)

    @r.get("/policy")
    def policy() -> dict[str, Any]:
        return service.policy.info(service.clock.time())

    @r.post("/policy")
    async def offer(doc: Any = Body(...)) -> Any:
        res = await run_in_threadpool(service.offer_module, doc, "api")
        body = res.as_dict()
        if res.refused:  # the error envelope, with the refusal's details beside it
            body = {"error": {"code": "refused", "reason": str(body.get("reason") or "module refused"), "field": None},
                    **body}
        return JSONResponse(body, status_code=409 if res.refused else 200)

    @r.post("/operator")
    async def operator(doc: Any = Body(...)) -> Any:
        res = await run_in_threadpool(service.submit_operator_doc, doc, "api")
        body: dict[str, Any] = {"ok": res.ok, "reason": res.reason, "signer": res.signer}
        if not res.ok:
            body["error"] = {"code": "refused", "reason": str(res.reason), "field": None}
        return JSONResponse(body, status_code=200 if res.ok else 409)

    @r.get("/decisions")
    def decisions(limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
        return {"decisions": service.decisions(limit)}

    return r
