"""Pushes the router's per-request events to an ingest URL in batches.

Serving never waits on telemetry: events go into a bounded buffer; a loop posts a
batch of JSON lines every `batch_ms`. While the ingest is down the buffer keeps
the newest events up to `max_events` and counts what it had to drop.

Input statistics go beside them, so input drift is visible: every `INPUT_GROUP` requests the mean
of each input feature becomes one `input_feature_mean{feature="i"}` sample (`samantha.core.domain.Sample`)
posted to the ingest's `samples` table. Fixed-size groups keep the samples' spread independent of the
request rate, so a change of load alone does not look like drift; one series per feature keeps
cardinality small.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from pathlib import Path
from typing import Any

import httpx
import orjson

from samantha.core.writer_tokens import read_token

MAX_BATCH = 20_000
INPUT_GROUP = 32  # requests per input-statistics sample (at 200 rps: 50 samples/s over 8 features)
MAX_FEATURES = 16  # wider inputs are not summarised (cardinality)
INPUT_METRIC = "input_feature_mean"


def samples_url(requests_url: str | None) -> str | None:
    """The samples endpoint beside the requests one (`.../v1/ingest/requests` -> `.../v1/ingest/samples`)."""
    if not requests_url or not requests_url.rstrip("/").endswith("/requests"):
        return None
    return requests_url.rstrip("/")[: -len("requests")] + "samples"


class InputStats:
    """Running sums of the input features; a group of `group` inputs becomes one mean per feature."""

    def __init__(self, group: int = INPUT_GROUP, max_samples: int = 20_000) -> None:
        self.group = group
        self.sums: list[float] = []
        self.n = 0
        self.out: deque[dict[str, Any]] = deque(maxlen=max_samples)

    def observe(self, x: Any, ts: float) -> bool:
        """One request's input vector; False (and nothing recorded) if it is not a short list of finite numbers."""
        if not isinstance(x, list) or not 0 < len(x) <= MAX_FEATURES:
            return False
        if not all(isinstance(v, float | int) and not isinstance(v, bool) and math.isfinite(v) for v in x):
            return False
        if len(x) != len(self.sums):  # a different input shape starts a new group
            self.sums, self.n = [0.0] * len(x), 0
        for i, v in enumerate(x):
            self.sums[i] += v
        self.n += 1
        if self.n >= self.group:
            for i, total in enumerate(self.sums):
                self.out.append({"metric": INPUT_METRIC, "labels": {"feature": str(i)}, "ts": ts,
                                 "value": total / self.n})
            self.sums, self.n = [0.0] * len(x), 0
        return True


class TelemetryPusher:
    """`token_file`: the router's writer credential, re-read after a 401 (the daemon may create or rotate it)."""

    def __init__(self, url: str | None, *, batch_ms: float = 50, max_events: int = 100_000,
                 token_file: Path | None = None):
        self.url = url
        self.token_file = token_file
        self._headers = self._read_headers()
        self.samples_url = samples_url(url)
        self.inputs = InputStats()
        self.samples_sent = 0
        self.batch_s = batch_ms / 1000
        self.buf: deque[dict[str, Any]] = deque()
        self.max_events = max_events
        self.sent = 0
        self.dropped = 0
        self.failed_posts = 0
        self.last_error: str | None = None
        self._client: httpx.AsyncClient | None = None

    def _read_headers(self) -> dict[str, str]:
        token = read_token(self.token_file) if self.token_file is not None else None
        auth = {"authorization": f"Bearer {token}"} if token else {}
        return {"content-type": "application/x-ndjson", **auth}

    def add(self, event: dict[str, Any]) -> None:
        if len(self.buf) >= self.max_events:
            self.buf.popleft()  # keep the newest: a judge needs the present more than the past
            self.dropped += 1
        self.buf.append(event)

    def add_sample(self, metric: str, labels: dict[str, str], value: float, ts: float | None = None) -> None:
        """A generic sample (slot process telemetry), posted with the input statistics, best effort."""
        self.inputs.out.append({"metric": metric, "labels": labels, "ts": time.time() if ts is None else ts,
                                "value": value})

    def add_input(self, body: bytes) -> None:
        """The request body as the model gets it; anything but `{"x": [numbers]}` is ignored."""
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            return
        if isinstance(doc, dict):
            self.inputs.observe(doc.get("x"), time.time())

    def stats(self) -> dict[str, Any]:
        return {"url": self.url, "sent": self.sent, "buffered": len(self.buf), "dropped": self.dropped,
                "failed_posts": self.failed_posts, "last_error": self.last_error,
                "input_samples_sent": self.samples_sent, "input_samples_buffered": len(self.inputs.out)}

    async def _post_inputs(self) -> None:
        """Input statistics are best effort: a failed post keeps them for the next period (bounded)."""
        out = self.inputs.out
        if self.samples_url is None or not out or self._client is None:
            return
        batch = [out.popleft() for _ in range(min(len(out), MAX_BATCH))]
        body = b"\n".join(orjson.dumps(e) for e in batch) + b"\n"
        try:
            r = await self._client.post(self.samples_url, content=body, headers=self._headers)
            if r.status_code == 401:
                self._headers = self._read_headers()
            if r.status_code >= 500 or r.status_code == 401:
                raise httpx.HTTPError(f"ingest answered {r.status_code}")
            if r.status_code < 400:
                self.samples_sent += len(batch)
            else:
                self.last_error = f"ingest refused input samples: {r.status_code} {r.text[:200]}"
        except httpx.HTTPError:
            out.extendleft(reversed(batch))

    async def run(self) -> None:
        if self.url is None:
            while True:  # nowhere to send: keep the bounded buffer as the record
                await asyncio.sleep(1.0)
        self._client = httpx.AsyncClient(timeout=2.0)
        backoff = self.batch_s
        try:
            while True:
                await asyncio.sleep(backoff)
                await self._post_inputs()
                if not self.buf:
                    backoff = self.batch_s
                    continue
                n = min(len(self.buf), MAX_BATCH)
                batch = [self.buf.popleft() for _ in range(n)]
                body = b"\n".join(orjson.dumps(e) for e in batch) + b"\n"
                try:
                    r = await self._client.post(self.url, content=body, headers=self._headers)
                    if r.status_code == 401:  # a credential created or rotated since: read it, retry the batch
                        self._headers = self._read_headers()
                        raise httpx.HTTPError(f"ingest refused the credential: {r.text[:200]}")
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
