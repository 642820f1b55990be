"""Opportunistic upload of the outbox: in sequence order, idempotent by batch id, acked by watermark.

One pass (`sync`):
1. ask the hub for its watermark for this outbox epoch and mark everything up to it
   acked (a reply lost after the hub stored a batch costs nothing but this question);
2. send pending batches oldest first. Each is frozen (attempts + 1, committed) before it
   goes on the wire, so a crash mid-upload resends the same bytes under the same id;
3. stop at the first failure and back off (capped exponential, persisted).

The hub checks each body's sha256 before storing, so a cut link never stores half a
batch; it stores each batch id once, so a resend never stores a record twice.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from samantha.core.clock import Clock
from samantha.core.signing import sha256_hex
from samantha.uplink.outbox import Outbox

ProgressFn = Callable[[int, int, dict[str, Any]], None]  # (sent so far, total pending at start, batch)


@dataclass
class SyncResult:
    ok: bool
    sent: int = 0
    duplicates: int = 0
    acked_by_watermark: int = 0
    bytes: int = 0
    remaining: int = 0
    error: str | None = None
    watermark: int = 0
    seconds: float = 0.0
    skipped: str | None = None  # why no attempt was made (backoff, no hub)
    kinds: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Uploader:
    def __init__(self, outbox: Outbox, hub_url: str, cube_id: str, clock: Clock, *, timeout_s: float = 10.0,
                 backoff_initial_s: float = 2.0, backoff_max_s: float = 300.0,
                 http: httpx.Client | None = None) -> None:
        self.outbox, self.clock, self.cube_id = outbox, clock, cube_id
        self.hub_url = hub_url.rstrip("/")
        self.backoff_initial_s, self.backoff_max_s = backoff_initial_s, backoff_max_s
        self._http = http or httpx.Client(timeout=httpx.Timeout(timeout_s, connect=min(3.0, timeout_s)))

    def close(self) -> None:
        self._http.close()

    # ---------------- backoff ----------------

    def due(self, now: float | None = None) -> bool:
        nxt = self.outbox.get_state("uplink:next_attempt_at")
        return nxt is None or float(nxt) <= (self.clock.time() if now is None else now)

    def _failed(self, error: str) -> None:
        failures = int(float(self.outbox.get_state("uplink:failures") or 0)) + 1
        delay = min(self.backoff_max_s, self.backoff_initial_s * 2 ** min(failures - 1, 30))
        delay *= random.uniform(0.5, 1.0)  # jitter: a fleet coming back online does not stampede the hub
        now = self.clock.time()
        self.outbox.set_state(**{"uplink:failures": failures, "uplink:next_attempt_at": now + delay,
                                 "uplink:last_error": error[:500], "uplink:last_attempt_at": now})

    def _succeeded(self) -> None:
        now = self.clock.time()
        self.outbox.set_state(**{"uplink:failures": 0, "uplink:next_attempt_at": now, "uplink:last_error": "",
                                 "uplink:last_sync_ok_at": now, "uplink:last_attempt_at": now})

    def last_sync_ok_at(self) -> float | None:
        v = self.outbox.get_state("uplink:last_sync_ok_at")
        return float(v) if v else None

    # ---------------- the pass ----------------

    def sync(self, *, force: bool = False, max_seconds: float | None = None, max_batches: int | None = None,
             progress: ProgressFn | None = None) -> SyncResult:
        """Upload until the outbox is empty, a failure, `max_seconds` or `max_batches`."""
        t0 = time.monotonic()
        res = SyncResult(ok=False)
        if not force and not self.due():
            res.skipped = "backoff"
            res.remaining = self.outbox.stats()["pending_batches"]
            return res
        base = f"{self.hub_url}/v1/cubes/{self.cube_id}"
        try:
            r = self._http.get(f"{base}/watermark", params={"epoch": self.outbox.epoch})
            if r.status_code != 200:
                raise _HubError(f"watermark: HTTP {r.status_code} {r.text[:200]}")
            res.watermark = int(r.json()["watermark"])
            res.acked_by_watermark = self.outbox.ack(res.watermark)
            total = self.outbox.stats()["pending_batches"]
            while max_batches is None or res.sent + res.duplicates < max_batches:
                if max_seconds is not None and time.monotonic() - t0 > max_seconds:
                    break
                batch = self.outbox.pending(limit=1)
                if not batch:
                    break
                b = batch[0]
                body = self.outbox.offer(b["seq"])
                r = self._http.put(f"{base}/batches/{b['batch_id']}", content=body, headers={
                    "Content-Type": "application/vnd.apache.parquet", "X-Samantha-Seq": str(b["seq"]),
                    "X-Samantha-Kind": b["kind"], "X-Samantha-First-Ts": repr(b["first_ts"]),
                    "X-Samantha-Records": str(b["records"]), "X-Samantha-Sha256": sha256_hex(body)})
                if r.status_code != 200:
                    raise _HubError(f"batch {b['batch_id']}: HTTP {r.status_code} {r.text[:200]}")
                reply = r.json()
                res.watermark = max(res.watermark, int(reply.get("watermark", 0)))
                self.outbox.ack(res.watermark, seqs=[b["seq"]])
                if reply.get("status") == "duplicate":
                    res.duplicates += 1
                else:
                    res.sent += 1
                    res.bytes += len(body)
                    res.kinds[b["kind"]] = res.kinds.get(b["kind"], 0) + 1
                if progress is not None:
                    progress(res.sent + res.duplicates, total, b)
        except (httpx.HTTPError, _HubError, ValueError, KeyError) as e:
            res.error = f"{type(e).__name__}: {e}"[:500]
            self._failed(res.error)
        else:
            res.ok = True
            self._succeeded()
        res.remaining = self.outbox.stats()["pending_batches"]
        res.seconds = round(time.monotonic() - t0, 3)
        return res


class _HubError(Exception):
    pass
