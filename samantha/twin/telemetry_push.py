"""Pushes the router's per-request events to an ingest URL in batches.

Serving never waits on telemetry: events go into a bounded buffer; a loop posts a
batch of JSON lines every `batch_ms`. While the ingest is down the buffer keeps
the newest events up to `max_events` and counts what it had to drop.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import httpx
import orjson

MAX_BATCH = 20_000


class TelemetryPusher:
    def __init__(self, url: str | None, *, batch_ms: float = 50, max_events: int = 100_000):
        self.url = url
        self.batch_s = batch_ms / 1000
        self.buf: deque[dict[str, Any]] = deque()
        self.max_events = max_events
        self.sent = 0
        self.dropped = 0
        self.failed_posts = 0
        self.last_error: str | None = None
        self._client: httpx.AsyncClient | None = None

    def add(self, event: dict[str, Any]) -> None:
        if len(self.buf) >= self.max_events:
            self.buf.popleft()  # keep the newest: a judge needs the present more than the past
            self.dropped += 1
        self.buf.append(event)

    def stats(self) -> dict[str, Any]:
        return {"url": self.url, "sent": self.sent, "buffered": len(self.buf), "dropped": self.dropped,
                "failed_posts": self.failed_posts, "last_error": self.last_error}

    async def run(self) -> None:
        if self.url is None:
            while True:  # nowhere to send: keep the bounded buffer as the record
                await asyncio.sleep(1.0)
        self._client = httpx.AsyncClient(timeout=2.0)
        backoff = self.batch_s
        try:
            while True:
                await asyncio.sleep(backoff)
                if not self.buf:
                    backoff = self.batch_s
                    continue
                n = min(len(self.buf), MAX_BATCH)
                batch = [self.buf.popleft() for _ in range(n)]
                body = b"\n".join(orjson.dumps(e) for e in batch) + b"\n"
                try:
                    r = await self._client.post(self.url, content=body, headers={"content-type": "application/x-ndjson"})
                    if r.status_code >= 500:
                        raise httpx.HTTPError(f"ingest answered {r.status_code}")
                    if r.status_code >= 400:  # our events are refused: retrying cannot help; count and move on
                        self.dropped += n
                        self.last_error = f"ingest refused batch: {r.status_code} {r.text[:200]}"
                    else:
                        self.sent += n
                        self.last_error = None
                    backoff = self.batch_s
                except httpx.HTTPError as e:
                    self.failed_posts += 1
                    self.last_error = f"{type(e).__name__}: {e}"
                    for ev in reversed(batch):  # back at the front, in order, within the bound
                        if len(self.buf) >= self.max_events:
                            self.dropped += 1
                            continue
                        self.buf.appendleft(ev)
                    backoff = min(2.0, backoff * 2)
        finally:
            await self._client.aclose()
