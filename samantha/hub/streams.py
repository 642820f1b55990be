"""The hub's JetStream streams and the writers' durable consumer, declared once (idempotent).

| stream          | subjects              | kept                                   | why                                  |
|-----------------|-----------------------|----------------------------------------|--------------------------------------|
| SAMANTHA_UP     | samantha.up.>         | 7 d, 1 GiB, discard new; dedup 2 min   | full: PubAck fails, the outbox keeps |
| SAMANTHA_POLICY | samantha.policy.>     | 10 per channel (last value + history)  | Cubes read the last one              |
| SAMANTHA_DOWN   | samantha.down.>       | 30 d                                   | a Cube offline a month still gets it |
| SAMANTHA_PARKED | samantha.parked.>     | 30 d                                   | poison batches, with the reason      |
| SAMANTHA_RECALL | samantha.recall.>     | last one per bundle, no age limit      | a Cube offline for months gets it    |

Every stream is file-backed with `replicas` copies (3 on the root cluster, 1 on a single `hub serve`).
"""

from __future__ import annotations

from typing import Any

from samantha.core import fleet

DAY = 86400.0
UP_MAX_BYTES = 1024**3  # reserved from the server's max_file_store (2 GB here)
ACK_WAIT_S = 60.0  # a writer silent this long is presumed dead: its batches go to another writer
MAX_DELIVER = 5  # then the batch is parked by the writer that sees the last delivery, never retried forever


async def ensure_streams(js: Any, replicas: int = 1, ack_wait: float = ACK_WAIT_S) -> None:
    from nats.js.api import AckPolicy, ConsumerConfig, DiscardPolicy, StorageType, StreamConfig

    streams = [
        StreamConfig(name=fleet.STREAM_UP, subjects=["samantha.up.>"], max_age=7 * DAY, max_bytes=UP_MAX_BYTES,
                     discard=DiscardPolicy.NEW, duplicate_window=120.0),
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
        except Exception as e:  # noqa: BLE001 - already there with another config: update it
            if "already in use" not in str(e):
                raise
            await js.update_stream(cfg)
    await js.add_consumer(fleet.STREAM_UP, ConsumerConfig(
        durable_name=fleet.WRITER_DURABLE, ack_policy=AckPolicy.EXPLICIT, ack_wait=ack_wait,
        max_deliver=MAX_DELIVER, max_ack_pending=4096, filter_subject="samantha.up.>"))
