"""Moving a SAMANTHA_UP made with limits retention (before the work queue) to the work queue, losing nothing.

JetStream cannot change a stream's retention in place (err 10052), and deleting the stream at once would drop
batches the Cubes were PubAcked for (so dropped from their outboxes) but no writer has written yet. In order:
1. seal it: a Cube's publish is refused from now on (10109), so its PubAck fails and its outbox keeps the batch;
2. drain it: writers on the writers' durable (created from the first message if it is gone: the writer's index
   drops the batches it already holds) until nothing is pending or unacked;
3. delete it; `ensure_streams` then creates the work queue and the Cubes' next rounds publish there.
Bounded by `timeout_s`: a stream that does not drain is an UpMigrationError, and it stays sealed (nothing lost,
the next start drains on). Run it from one hub process: a second one started meanwhile drains alongside.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from samantha.core import fleet
from samantha.hub.storage import HubStorage
from samantha.hub.streams import ACK_WAIT_S, writer_consumer_config
from samantha.hub.writer import ParquetWriter

log = logging.getLogger(__name__)


class UpMigrationError(RuntimeError):
    pass


async def _backlog(js: Any) -> int:
    ci = await js.consumer_info(fleet.STREAM_UP, fleet.WRITER_DURABLE)
    return int(ci.num_pending) + int(ci.num_ack_pending)


async def migrate_up_stream(js: Any, nc: Any, storage: HubStorage, *, ack_wait: float = ACK_WAIT_S,
                            writers: int = 1, timeout_s: float = 600.0) -> dict[str, Any]:
    """Seal, drain into Parquet, delete the limits-retention SAMANTHA_UP. Returns what the drain wrote."""
    from nats.js.api import RetentionPolicy

    info = await js.stream_info(fleet.STREAM_UP)
    if info.config.retention == RetentionPolicy.WORK_QUEUE:
        return {"migrated": False}
    cfg = info.config
    if not cfg.sealed:
        cfg.sealed = True
        await js.update_stream(cfg)
        log.warning("%s has limits retention: sealed (Cubes' outboxes keep their batches), draining it",
                    fleet.STREAM_UP)
    await js.add_consumer(fleet.STREAM_UP, writer_consumer_config(ack_wait))
    stop = asyncio.Event()
    ws = [ParquetWriter(storage, js, nc, name=f"migrate{i + 1}") for i in range(writers)]
    tasks = [asyncio.create_task(w.run(stop)) for w in ws]
    t0 = time.monotonic()
    try:
        while (left := await _backlog(js)) > 0:
            if time.monotonic() - t0 > timeout_s:
                raise UpMigrationError(
                    f"{fleet.STREAM_UP}: {left} batches still unwritten after {timeout_s:g} s of draining the old "
                    f"limits-retention stream; it stays sealed (Cubes keep their data), start the hub again to go on")
            await asyncio.sleep(0.5)
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    again = await js.stream_info(fleet.STREAM_UP)
    if again.config.retention != RetentionPolicy.WORK_QUEUE:  # not already replaced by another hub process
        await js.delete_stream(fleet.STREAM_UP)
    out = {"migrated": True, "messages": int(info.state.messages), "drain_s": round(time.monotonic() - t0, 2),
           **{k: sum(getattr(w.stats, k) for w in ws) for k in ("stored", "duplicates", "parked")}}
    log.warning("%s migrated to a work queue: %s", fleet.STREAM_UP, out)
    return out
