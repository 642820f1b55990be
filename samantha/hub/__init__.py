"""The hub: NATS JetStream (the streams, the Parquet writers on their durable consumer, the operator acts) and
the legacy HTTP hub, a separate runtime that Cubes reach only over the network.

It stores Reported State as Parquet partitioned by kind, cube and day, publishes signed policy modules and
Recalls, and relays signed approval decisions. See docs/hub.md.
"""

__all__ = ["app", "broker", "nats_hub", "nats_ops", "recall_status", "storage", "streams", "tuf_repo",
           "up_migration", "writer"]
