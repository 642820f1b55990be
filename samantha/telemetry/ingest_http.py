"""HTTP push ingest: `POST /v1/ingest/{samples|requests|events}` with a JSON-lines body.

Each non-blank line is one record. A malformed line or an invalid record is rejected with
its 1-based line number, field and reason; the good lines are kept (200 with partial
acceptance). An unknown table is a 404 naming it, a body over the limit a 413. The router
is mounted on the daemon's local API later; `samantha telemetry serve` runs it standalone.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from samantha.telemetry.store import TelemetryStore
from samantha.telemetry.validation import BAD_JSON, WRONG_TYPE, Reject

TABLES = ("samples", "requests", "events")


class BodyTooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json_lines(body: bytes) -> tuple[list[Any], list[int], list[Reject]]:
    """Records, their 1-based line numbers, and rejects (index = line number) for bad lines."""
    records: list[Any] = []
    lines: list[int] = []
    rejects: list[Reject] = []
    for k, raw in enumerate(body.split(b"\n"), start=1):
        raw = raw.strip()
        if not raw:
            continue
        try:
            rec = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            rejects.append(Reject(k, "", BAD_JSON, str(e)[:200]))
            continue
        if not isinstance(rec, dict):
            rejects.append(Reject(k, "", WRONG_TYPE, f"a line is one JSON object, got {type(rec).__name__}"))
            continue
        records.append(rec)
        lines.append(k)
    return records, lines, rejects


def make_ingest_router(store: TelemetryStore, max_body_bytes: int | None = None) -> APIRouter:
    limit = max_body_bytes or store.cfg.ingest_max_body_bytes
    router = APIRouter()
    ingest = {"samples": store.ingest_samples, "requests": store.ingest_requests, "events": store.ingest_events}

    @router.post("/v1/ingest/{table}")
    async def ingest_lines(table: str, request: Request) -> JSONResponse:
        if table not in ingest:
            return JSONResponse({"error": "unknown_table", "table": table[:100],
                                 "reason": f"unknown table {table[:100]!r}; use one of {list(TABLES)}"},
                                status_code=404)
        try:
            body = await _read_body(request, limit)
        except BodyTooLarge:
            return JSONResponse({"error": "too_large", "reason": f"body exceeds {limit} bytes; send smaller batches"},
                                status_code=413)
        records, lines, bad_lines = parse_json_lines(body)
        store.count_rejects(bad_lines)
        result = await run_in_threadpool(ingest[table], records) if records else None
        rejected = [{"line": r.index, "field": r.field, "reason": r.reason, "detail": r.detail} for r in bad_lines]
        if result is not None:
            rejected += [{"line": lines[r.index], "field": r.field, "reason": r.reason, "detail": r.detail}
                         for r in result.rejected]
            rejected.sort(key=lambda r: r["line"])
        return JSONResponse({"accepted": result.accepted if result else 0, "rejected": rejected,
                             "shed": result.shed if result else 0})

    return router
