"""The hub's JetStream streams and the writers' durable consumer, declared once (idempotent).

| stream          | subjects              | kept                                              | why                                  |
|-----------------|-----------------------|---------------------------------------------------|--------------------------------------|
| SAMANTHA_UP     | samantha.up.>         | work queue: until the writer acks; max_bytes      | full: PubAck fails, the outbox keeps |
|                 |                       | (default 1 GiB), discard new, no age; dedup 2 min |                                      |
| SAMANTHA_POLICY | samantha.policy.>     | 10 per channel (last value + history)             | Cubes read the last one              |
| SAMANTHA_DOWN   | samantha.down.>       | 30 d                                              | a Cube offline a month still gets it |
| SAMANTHA_PARKED | samantha.parked.>     | 30 d                                              | poison batches, with the reason      |
| SAMANTHA_RECALL | samantha.recall.>     | last one per bundle, no age limit                 | a Cube offline for months gets it    |

SAMANTHA_UP is a work queue because the writer's Parquet is the store of record: a batch leaves the stream
when the writer acks it (durable and indexed) or terminates it (parked), so the stream holds only what is not
written yet, and a fleet back from a week offline fits as long as the writers keep up. No max_age: a batch the
stream PubAcked (the Cube dropped its copy) is never expired unwritten. A work queue allows one consumer per
subject: the writers' durable `parquet-writer` is the only reader (the writers share it).

Every stream is file-backed with `replicas` copies (3 on the root cluster, 1 on a single `hub serve`).
"""

from __future__ import annotations

from typing import Any

from samantha.core import fleet

DAY = 86400.0
UP_MAX_BYTES = 1024**3  # default; size it from the fleet: Cubes x what one holds unwritten (docs/hub.md)
ACK_WAIT_S = 60.0  # a writer silent this long is presumed dead: its batches go to another writer
MAX_DELIVER = 5  # then the batch is parked by the writer that sees the last delivery, never retried forever


class LegacyUpStream(Exception):  # noqa: N818 - a state to migrate, not a failure
    """SAMANTHA_UP exists with limits retention (before the work queue): JetStream cannot change a stream's
    retention in place, so it is migrated (`samantha/hub/up_migration.py`)."""

    def __init__(self, info: Any) -> None:
        super().__init__(f"{fleet.STREAM_UP} has retention {info.config.retention}, not workqueue")
        self.info = info


def up_stream_config(max_bytes: int = UP_MAX_BYTES) -> Any:
    from nats.js.api import DiscardPolicy, RetentionPolicy, StreamConfig

    if max_bytes <= 0:
        raise ValueError(f"up_max_bytes: {max_bytes} must be > 0 (the stream must be bounded)")
    return StreamConfig(name=fleet.STREAM_UP, subjects=["samantha.up.>"], retention=RetentionPolicy.WORK_QUEUE,
                        max_bytes=max_bytes, discard=DiscardPolicy.NEW, duplicate_window=120.0)


def writer_consumer_config(ack_wait: float = ACK_WAIT_S) -> Any:
    from nats.js.api import AckPolicy, ConsumerConfig

    return ConsumerConfig(durable_name=fleet.WRITER_DURABLE, ack_policy=AckPolicy.EXPLICIT, ack_wait=ack_wait,
                          max_deliver=MAX_DELIVER, max_ack_pending=4096, filter_subject="samantha.up.>")


async def ensure_streams(js: Any, replicas: int = 1, ack_wait: float = ACK_WAIT_S,
                         up_max_bytes: int = UP_MAX_BYTES) -> None:
    """Create or update every stream and the writers' consumer. Raises LegacyUpStream for an old SAMANTHA_UP."""
    from nats.js.api import RetentionPolicy, StorageType, StreamConfig
    from nats.js.errors import NotFoundError

    try:
        info = await js.stream_info(fleet.STREAM_UP)
    except NotFoundError:
        info = None
    if info is not None and info.config.retention != RetentionPolicy.WORK_QUEUE:
        raise LegacyUpStream(info)
    streams = [
        up_stream_config(up_max_bytes),
        StreamConfig(name=fleet.STREAM_POLICY, subjects=["samantha.policy.>"], max_msgs_per_subject=10,
                     allow_direct=True),
        StreamConfig(name=fleet.STREAM_DOWN, subjects=["samantha.down.>"], max_age=30 * DAY),
        StreamConfig(name=fleet.STREAM_PARKED, subjects=["samantha.parked.>"], max_age=30 * DAY),
        StreamConfig(name=fleet.STREAM_RECALL, subjects=[fleet.RECALL_SUBJECTS], max_msgs_per_subject=1,
                     allow_direct=True),
    ]
    for cfg in streams:
        cfg.num_replicas, cfg.storage = replicas, StorageType.FILE
        try:
            await js.add_stream(cfg)
        except Exception as e:  # noqa: BLE001 - already there with another config (max_bytes, ...): update it
            if "already in use" not in str(e):
                raise
            await js.update_stream(cfg)
    await js.add_consumer(fleet.STREAM_UP, writer_consumer_config(ack_wait))
