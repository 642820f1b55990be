"""`python -m samantha.hub.nats_hub --root DIR`: the hub on NATS JetStream.

Without `--nats` it is the embedded default (`samantha hub serve`): one local nats-server from the pip
package (server name `hub-1`, its store under DIR/nats: stable across restarts, nats-server #3024),
the streams with one replica, and the Parquet writers. With `--nats URL...` it joins an existing
cluster (streams with `--replicas`) and only runs writers. Prints `samantha-hub ready <nats url>`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
from pathlib import Path

from samantha.core import fleet
from samantha.core.ports import free_port
from samantha.hub.broker import NatsServer, ServerSpec
from samantha.hub.storage import HubStorage
from samantha.hub.streams import ACK_WAIT_S, ensure_streams
from samantha.hub.writer import ParquetWriter

READY_PREFIX = "samantha-hub ready "


async def serve(root: str, servers: list[str] | None, *, writers: int = 1, replicas: int = 1, port: int = 0,
                name: str = "w", stats_file: str | None = None,
                ack_wait: float = ACK_WAIT_S) -> None:
    import nats

    broker = None
    if not servers:
        broker = NatsServer(ServerSpec(name="hub-1", root=Path(root) / "nats", port=port or free_port()))
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
        for attempt in range(20):  # a cluster that just started may still be electing its meta leader
            try:
                await ensure_streams(js, replicas, ack_wait)
                break
            except Exception:  # noqa: BLE001
                if attempt == 19:
                    raise
                await asyncio.sleep(0.5)
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
    a = p.parse_args(argv)
    asyncio.run(serve(a.root, a.nats, writers=a.writers, replicas=a.replicas, port=a.port, name=a.name,
                      stats_file=a.stats_file, ack_wait=a.ack_wait))


if __name__ == "__main__":
    main()
