"""The Parquet writer: a durable pull consumer on SAMANTHA_UP that writes today's Hive layout.

Any number of writers (threads or processes, on any host sharing the storage root) fetch from the one
durable consumer `parquet-writer`, so JetStream spreads batches across them. Per message:
1. check headers and sha256; a bad one is *parked* (copied to samantha.parked.<cube>.<kind> with a
   Samantha-Reason header) and terminated: never retried, never blocking the stream;
2. `HubStorage.put_batch` writes `<kind>/cube=<cube>/day=<day>/<batch id>.parquet` (temp, fsync,
   rename) and indexes it; a batch id already held is a duplicate and writes nothing (this is the
   dedup that holds days later, past the stream's 2-minute window);
3. ack only then. A writer killed before its ack loses nothing (redelivered after ack_wait) and
   duplicates nothing (the file name is the batch id; the index says it is held).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from samantha.core import fleet
from samantha.hub.storage import HubInputError, HubStorage
from samantha.hub.streams import MAX_DELIVER

log = logging.getLogger(__name__)


@dataclass
class WriterStats:
    stored: int = 0
    duplicates: int = 0
    parked: int = 0
    records: int = 0
    errors: int = 0
    reasons: list[str] = field(default_factory=list)


def _parse(msg: Any) -> dict[str, Any]:
    """The batch's fields from subject + headers, or a HubInputError naming the header."""
    h = msg.headers or {}
    parts = msg.subject.split(".")
    if len(parts) != 5:
        raise HubInputError("subject", f"{msg.subject!r} is not samantha.up.<region>.<cube>.<kind>")
    _, _, region, cube, kind = parts
    if h.get(fleet.H_KIND, kind) != kind or h.get(fleet.H_CUBE, cube) != cube:
        raise HubInputError("subject", "headers name another cube or kind than the subject")
    try:
        seq = int(h.get(fleet.H_SEQ, ""))
    except ValueError:
        raise HubInputError(fleet.H_SEQ, "an integer header is required") from None
    try:
        first_ts = float(h.get(fleet.H_FIRST_TS, ""))
    except ValueError:
        raise HubInputError(fleet.H_FIRST_TS, "a number header is required") from None
    batch_id = h.get(fleet.H_BATCH) or h.get("Nats-Msg-Id", "")
    return {"cube": cube, "batch_id": batch_id, "seq": seq, "kind": kind, "first_ts": first_ts,
            "sha256": h.get(fleet.H_SHA256, ""), "region": region}


class ParquetWriter:
    def __init__(self, storage: HubStorage, js: Any, nc: Any, *, batch: int = 16, name: str = "w1") -> None:
        self.storage, self.js, self.nc, self.batch, self.name = storage, js, nc, batch, name
        self.stats = WriterStats()
        self._sub: Any = None

    async def _park(self, msg: Any, reason: str) -> None:
        parts = msg.subject.split(".")
        cube = parts[3] if len(parts) == 5 and fleet.TOKEN_RE.match(parts[3]) else "unknown"
        kind = parts[4] if len(parts) == 5 and fleet.TOKEN_RE.match(parts[4]) else "unknown"
        headers = {k: v for k, v in (msg.headers or {}).items() if k != "Nats-Msg-Id"}
        headers[fleet.H_REASON] = reason[:500]
        headers["Samantha-Subject"] = msg.subject
        await self.js.publish(fleet.parked_subject(cube, kind), msg.data, headers=headers)
        await msg.term()
        self.stats.parked += 1
        self.stats.reasons = [*self.stats.reasons[-9:], reason[:200]]
        log.warning("parked %s: %s", msg.subject, reason)

    async def handle(self, msg: Any) -> None:
        try:
            f = _parse(msg)
            res = await asyncio.to_thread(self.storage.put_batch, f["cube"], f["batch_id"], seq=f["seq"],
                                          kind=f["kind"], first_ts=f["first_ts"], sha256=f["sha256"],
                                          body=bytes(msg.data), now=time.time())
        except HubInputError as e:
            await self._park(msg, f"{e.field}: {e.reason}")
            return
        except Exception as e:  # noqa: BLE001 - disk full, index locked: retry, then park on the last delivery
            self.stats.errors += 1
            delivered = getattr(msg.metadata, "num_delivered", 1) if msg.reply else 1
            if delivered >= MAX_DELIVER:
                await self._park(msg, f"failed {delivered} times: {type(e).__name__}: {e}")
            else:
                await msg.nak(delay=min(30.0, 2.0 * delivered))
            return
        await msg.ack_sync()  # the file is durable and indexed: now JetStream may forget the message
        if res["status"] == "duplicate":
            self.stats.duplicates += 1
        else:
            self.stats.stored += 1
            self.stats.records += int(res.get("records", 0))

    async def run(self, stop: asyncio.Event) -> None:
        from nats.errors import TimeoutError as NatsTimeout

        self._sub = await self.js.pull_subscribe_bind(durable=fleet.WRITER_DURABLE, stream=fleet.STREAM_UP)
        while not stop.is_set():
            try:
                msgs = await self._sub.fetch(self.batch, timeout=1.0)
            except (TimeoutError, NatsTimeout):
                continue
            except Exception as e:  # noqa: BLE001 - a node of the cluster went away: fetch again
                log.warning("writer %s fetch: %s", self.name, e)
                await asyncio.sleep(0.5)
                continue
            for m in msgs:
                await self.handle(m)
