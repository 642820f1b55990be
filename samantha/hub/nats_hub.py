"""`python -m samantha.hub.nats_hub --root DIR`: the hub on NATS JetStream.

Without `--nats` it is the embedded default (`samantha hub serve`): one local nats-server from the pip
package (server name `hub-1`, its store under DIR/nats: stable across restarts, nats-server #3024),
the streams with one replica, and the Parquet writers. With `--nats URL...` it joins an existing
cluster (streams with `--replicas`) and only runs writers. Prints `samantha-hub ready <nats url>`.
`--up-max-mb` bounds SAMANTHA_UP (a work queue: only what is not written yet); a SAMANTHA_UP made before the
work queue is sealed, drained into Parquet and replaced at start (samantha/hub/up_migration.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from pathlib import Path

from samantha.core import fleet
from samantha.core.ports import free_port
from samantha.hub.broker import NatsServer, ServerSpec
from samantha.hub.storage import HubStorage
from samantha.hub.streams import ACK_WAIT_S, UP_MAX_BYTES, LegacyUpStream, ensure_streams
from samantha.hub.up_migration import UpMigrationError, migrate_up_stream
from samantha.hub.writer import ParquetWriter

READY_PREFIX = "samantha-hub ready "
MB = 1024**2


class HubConfigError(RuntimeError):
    pass


async def _declare(js: object, nc: object, storage: HubStorage, *, replicas: int, ack_wait: float,
                   up_max_bytes: int, writers: int) -> None:
    for attempt in range(20):  # a cluster that just started may still be electing its meta leader
        try:
            await ensure_streams(js, replicas, ack_wait, up_max_bytes)
            return
        except LegacyUpStream:
            res = await migrate_up_stream(js, nc, storage, ack_wait=ack_wait, writers=writers)
            print(f"samantha-hub: {fleet.STREAM_UP} migrated to a work queue: {json.dumps(res)}", flush=True)
        except Exception as e:  # noqa: BLE001
            if "insufficient" in str(e):  # JetStream reserves max_bytes up front from max_file_store
                raise HubConfigError(f"--up-max-mb {up_max_bytes / MB:g}: the servers' JetStream storage cannot "
                                     f"reserve it ({e}); lower it or raise the servers' max_file_store") from e
            if attempt == 19:
                raise
            await asyncio.sleep(0.5)


async def serve(root: str, servers: list[str] | None, *, writers: int = 1, replicas: int = 1, port: int = 0,
                name: str = "w", stats_file: str | None = None,
                ack_wait: float = ACK_WAIT_S, up_max_bytes: int = UP_MAX_BYTES) -> None:
    import nats

    broker = None
    if not servers:  # the embedded server reserves SAMANTHA_UP's bound plus room for the other streams
        broker = NatsServer(ServerSpec(name="hub-1", root=Path(root) / "nats", port=port or free_port(),
                                       max_file=str(max(2 * 1024**3, up_max_bytes + 1024**3))))
        broker.start()
        await asyncio.to_thread(broker.wait_ready, 30.0)
        servers = [broker.url]
    storage = HubStorage(root)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    nc = await nats.connect(servers=servers, connect_timeout=5, max_reconnect_attempts=-1, reconnect_time_wait=0.5,
                            name=f"samantha-hub-{name}")
    try:
        js = nc.jetstream(domain=fleet.DOMAIN, timeout=10.0)
        await _declare(js, nc, storage, replicas=replicas, ack_wait=ack_wait, up_max_bytes=up_max_bytes,
                       writers=writers)
        ws = [ParquetWriter(storage, js, nc, name=f"{name}{i + 1}") for i in range(writers)]
        tasks = [asyncio.create_task(w.run(stop)) for w in ws]
        print(f"{READY_PREFIX}{servers[0]}", flush=True)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
            if stats_file:
                total = {k: sum(getattr(w.stats, k) for w in ws) for k in ("stored", "duplicates", "parked",
                                                                            "records", "errors")}
                Path(stats_file).write_text(json.dumps(total))
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await nc.close()
        storage.close()
        if broker is not None:
            broker.stop()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="samantha-hub-nats")
    p.add_argument("--root", required=True)
    p.add_argument("--nats", nargs="*", default=None, help="join these servers (else: embedded nats-server)")
    p.add_argument("--port", type=int, default=0, help="embedded nats-server client port (0: free)")
    p.add_argument("--writers", type=int, default=1)
    p.add_argument("--replicas", type=int, default=1)
    p.add_argument("--name", default="w")
    p.add_argument("--stats-file", default=None)
    p.add_argument("--ack-wait", type=float, default=ACK_WAIT_S,
                   help="seconds before a silent writer's batches go to another writer (every writer must agree)")
    p.add_argument("--up-max-mb", type=float, default=UP_MAX_BYTES / MB,
                   help="SAMANTHA_UP's bound in MiB: what the Cubes may push while the writers lag (docs/hub.md)")
    a = p.parse_args(argv)
    if a.up_max_mb <= 0:
        p.error(f"--up-max-mb: {a.up_max_mb:g} must be > 0 (the stream must be bounded)")
    try:
        asyncio.run(serve(a.root, a.nats, writers=a.writers, replicas=a.replicas, port=a.port, name=a.name,
                          stats_file=a.stats_file, ack_wait=a.ack_wait, up_max_bytes=int(a.up_max_mb * MB)))
    except (HubConfigError, UpMigrationError) as e:
        print(f"samantha-hub: error: {e}", file=sys.stderr, flush=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
