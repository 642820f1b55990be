"""HTTP push ingest: `POST /v1/ingest/{samples|requests|events}` with a JSON-lines body.

Each non-blank line is one record. A malformed line or an invalid record is rejected with
its 1-based line number, field and reason; the good lines are kept (200 with partial
acceptance). An unknown table is a 404 naming it, a body over the limit a 413. The router
is mounted on the daemon's local API later; `samantha telemetry serve` runs it standalone.

Who may write is decided in front of it (the daemon's writer credentials, `samantha/api/writers.py`):
the writer's name arrives as `request.state.writer` and is stored with each request and event row;
`admit(writer, table, rows)` answers the seconds to wait (429) when the writer's row budget is spent.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

import orjson
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from samantha.telemetry.schema import LOCAL_WRITER
from samantha.telemetry.store import TelemetryStore
from samantha.telemetry.validation import BAD_JSON, WRONG_TYPE, Reject

TABLES = ("samples", "requests", "events")
# batches up to this size are ingested on the event loop when the write buffer has room (a put then never waits;
# a race with another producer can make it wait at most `store.block_timeout_s`): a thread hand-off per push cost
# more than the push
INLINE_ROWS = 500


class RejectedLine(BaseModel):
    line: int
    field: str
    reason: str
    detail: str | None = None


class IngestAnswer(BaseModel):
    accepted: int = Field(description="records stored")
    rejected: list[RejectedLine] = Field(description="bad lines, by 1-based line number")
    shed: int = Field(description="records dropped by the write buffer under overload")
    writer: str = Field(description="the writer the rows are stored as")


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


Admit = Callable[[str, str, int], float]


def _error(status: int, code: str, reason: str, field: str | None = None, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "reason": reason, "field": field}, **extra}, status_code=status)


def make_ingest_router(store: TelemetryStore, max_body_bytes: int | None = None, *,
                       admit: Admit | None = None, responses: dict[int | str, Any] | None = None) -> APIRouter:
    limit = max_body_bytes or store.cfg.ingest_max_body_bytes
    router = APIRouter(tags=["ingest"])
    ingest = {"samples": lambda recs, _w: store.ingest_samples(recs), "requests": store.ingest_requests,
              "events": store.ingest_events}

    @router.post("/v1/ingest/{table}", response_model=IngestAnswer, responses=responses or {},
                 openapi_extra={"requestBody": {"required": True, "content": {
                     "application/x-ndjson": {"schema": {"type": "string", "description": "JSON lines"}},
                     "text/plain": {"schema": {"type": "string", "description": "JSON lines"}}}}})
    async def ingest_lines(table: Literal["samples", "requests", "events"], request: Request) -> Any:
        """One record per line; bad lines are named (line, field, reason), the good ones kept."""
        try:
            body = await _read_body(request, limit)
        except BodyTooLarge:
            return _error(413, "too_large", f"body exceeds {limit} bytes; send smaller batches")
        writer = getattr(request.state, "writer", None) or LOCAL_WRITER
        records, lines, bad_lines = parse_json_lines(body)
        if admit is not None and records:
            wait = admit(writer, table, len(records))
            if wait > 0:
                headers = {"Retry-After": str(max(1, math.ceil(wait)))} if math.isfinite(wait) else {}
                reason = (f"writer {writer} is over its row budget (api.writers.{writer}.max_rows); retry later"
                          if math.isfinite(wait) else
                          f"a batch of {len(records)} rows is larger than writer {writer}'s whole budget; split it")
                resp = _error(429 if math.isfinite(wait) else 413, "rate_limited" if math.isfinite(wait)
                              else "too_large", reason)
                resp.headers.update(headers)
                return resp
        store.count_rejects(bad_lines)
        result = None
        if records and len(records) <= INLINE_ROWS and store.buffer.has_room(len(records)):
            result = ingest[table](records, writer)  # a router push: validated and queued here, no thread hop
        elif records:  # a large batch, or a buffer that may make the producer wait: never on the event loop
            result = await run_in_threadpool(ingest[table], records, writer)
        rejected = [{"line": r.index, "field": r.field, "reason": r.reason, "detail": r.detail} for r in bad_lines]
        if result is not None:
            rejected += [{"line": lines[r.index], "field": r.field, "reason": r.reason, "detail": r.detail}
                         for r in result.rejected]
            rejected.sort(key=lambda r: r["line"])
        return JSONResponse({"accepted": result.accepted if result else 0, "rejected": rejected,
                             "shed": result.shed if result else 0, "writer": writer})

    return router
