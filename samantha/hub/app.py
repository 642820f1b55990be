"""The hub's HTTP API (FastAPI). Plain HTTP + JSON/Parquet: nothing a Cube needs a hub library for.

    PUT  /v1/cubes/{cube}/batches/{batch_id}   a Parquet batch; headers X-Samantha-{Seq,Kind,First-Ts,Sha256}
    GET  /v1/cubes/{cube}/watermark?epoch=E   every seq <= watermark is stored
    GET  /v1/policy                           the signed policy module (404: none published)
    PUT  /v1/policy                           publish a signed module (the hub relays; Cubes verify)
    GET  /v1/policy/tuf                       the fleet TUF metadata set listing the module (404: none)
    PUT  /v1/policy/tuf                       publish it ({"files": {name: text}}; Cubes verify it)
    POST /v1/cubes/{cube}/decisions           relay a signed approval decision to a Cube
    GET  /v1/cubes/{cube}/decisions?after=N   decisions for a Cube, in order
    GET  /v1/fleet/stats                      records, distinct records and duplicates per kind
    GET  /v1/fleet/queue/{kind}               findings / proposed gates / approval requests, queued
"""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from samantha.hub.storage import HubInputError, HubStorage

MAX_BODY = 256 * 1024 * 1024


def _error(status: int, code: str, reason: str, field: str | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "reason": reason, "field": field}}, status_code=status)


async def _json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except ValueError as e:
        raise HubInputError("body", f"not JSON: {e}") from e


def make_app(storage: HubStorage) -> FastAPI:
    app = FastAPI(title="samantha-hub", docs_url=None, redoc_url=None)

    @app.exception_handler(HubInputError)
    async def _bad(request: Request, exc: HubInputError) -> JSONResponse:
        return _error(exc.status, "invalid", exc.reason, exc.field)

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"ok": True, "server": "samantha-hub"}

    @app.put("/v1/cubes/{cube}/batches/{batch_id}")
    async def put_batch(cube: str, batch_id: str, request: Request) -> Any:
        h = request.headers
        try:
            seq = int(h.get("x-samantha-seq", ""))
        except ValueError:
            return _error(400, "invalid", "an integer header is required", "X-Samantha-Seq")
        try:
            first_ts = float(h.get("x-samantha-first-ts", ""))
        except ValueError:
            return _error(400, "invalid", "a number header is required", "X-Samantha-First-Ts")
        declared = int(h.get("content-length") or 0)
        if declared > MAX_BODY:
            return _error(413, "too_large", f"body over {MAX_BODY} bytes", "body")
        try:
            body = await request.body()
        except ClientDisconnect:  # the link died mid-upload: nothing is stored
            return _error(400, "incomplete", "client disconnected mid-body", "body")
        return await run_in_threadpool(storage.put_batch, cube, batch_id, seq=seq, kind=h.get("x-samantha-kind", ""),
                                       first_ts=first_ts, sha256=h.get("x-samantha-sha256", ""), body=body,
                                       now=time.time())

    @app.get("/v1/cubes/{cube}/watermark")
    def watermark(cube: str, epoch: str = Query(pattern=r"^[0-9a-f]{12}$")) -> dict[str, Any]:
        return {"cube": cube, "epoch": epoch, "watermark": storage.watermark(cube, epoch)}

    @app.get("/v1/cubes/{cube}/batches")
    def batches(cube: str) -> dict[str, Any]:
        return {"batches": storage.batches(cube)}

    @app.get("/v1/policy")
    def policy() -> Any:
        doc = storage.policy()
        return doc if doc is not None else _error(404, "no_policy", "no policy module published")

    @app.put("/v1/policy")
    async def publish(request: Request) -> Any:
        doc = await _json_body(request)
        return await run_in_threadpool(storage.publish, doc)

    @app.get("/v1/policy/tuf")
    def policy_tuf() -> Any:
        doc = storage.tuf()
        return doc if doc is not None else _error(404, "no_tuf", "no TUF metadata published")

    @app.put("/v1/policy/tuf")
    async def publish_tuf(request: Request) -> Any:
        doc = await _json_body(request)
        return await run_in_threadpool(storage.publish_tuf, doc)

    @app.post("/v1/cubes/{cube}/decisions")
    async def add_decision(cube: str, request: Request) -> Any:
        doc = await _json_body(request)
        return {"seq": await run_in_threadpool(storage.add_decision, cube, doc, time.time())}

    @app.get("/v1/cubes/{cube}/decisions")
    def decisions(cube: str, after: int = Query(0, ge=0), limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
        return {"decisions": storage.decisions(cube, after, limit)}

    @app.get("/v1/fleet/stats")
    def fleet_stats() -> dict[str, Any]:
        return storage.fleet_stats()

    @app.get("/v1/fleet/queue/{kind}")
    def queue(kind: str, limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
        return {"kind": kind, "items": storage.queue(kind, limit)}

    return app
