"""The router process: data plane (POST /infer) and the control API on two ports, one event loop."""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path

from samantha.twin.control import CubeControl, SlotRecord
from samantha.twin.http import HttpServer, Upstream, install_uvloop, write_port_file
from samantha.twin.router import Link, Router, RouteTable
from samantha.twin.telemetry_push import TelemetryPusher


def _hostport(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


async def serve(args: argparse.Namespace) -> None:
    slots = {}
    for name, data, ctrl in (("A", args.slot_a_data, args.slot_a_control), ("B", args.slot_b_data, args.slot_b_control)):
        slots[name] = SlotRecord(name=name, data=Upstream(*_hostport(data)), control_url=f"http://{ctrl}")
    pusher = TelemetryPusher(args.ingest_url or None, batch_ms=args.batch_ms, max_events=args.buffer_max,
                             token_file=Path(args.ingest_token_file) if args.ingest_token_file else None)
    router = Router(RouteTable(Link("A", slots["A"].data, None), None, 0.0, False), pusher, timeout_s=args.timeout,
                    probe_percent=args.probe_percent)
    control = CubeControl(router, slots, trusted_path=Path(args.trusted),
                          state_file=Path(args.state_file) if args.state_file else None,
                          bundles_dir=Path(args.bundles_dir) if args.bundles_dir else None,
                          health_interval_s=args.health_interval)
    await serve_until_signalled(router, control, pusher, args, "router")
    await control.http.aclose()


async def serve_until_signalled(router: Router, control: CubeControl, pusher: TelemetryPusher,
                                args: argparse.Namespace, what: str) -> None:
    """Check the slots, serve the data and control ports until SIGTERM/SIGINT, then drain both.

    One lifecycle for every Cube runtime (the twin's router and the one in front of real servers).
    """
    await asyncio.gather(*(control._check(s) for s in control.slots.values()))
    control.publish()
    data_server, control_server = HttpServer(router.handle), HttpServer(control.handle)
    port = await data_server.start(args.host, args.port)
    control_port = await control_server.start(args.host, args.control_port)
    write_port_file(args.port_file, {"router_port": port, "control_port": control_port})
    loop = asyncio.get_running_loop()
    tasks = [loop.create_task(control.health_loop()), loop.create_task(pusher.run())]
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"{what} on {args.host}:{port}, control on {args.host}:{control_port}", flush=True)
    await stop.wait()
    await data_server.close(drain_s=2.0)
    await control_server.close(drain_s=0.5)
    for t in tasks:
        t.cancel()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m samantha.twin.router_process")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--control-port", type=int, required=True)
    for s in ("a", "b"):
        ap.add_argument(f"--slot-{s}-data", required=True, help="host:port of the slot's data path (its proxy)")
        ap.add_argument(f"--slot-{s}-control", required=True, help="host:port of the slot itself")
    ap.add_argument("--trusted", required=True)
    ap.add_argument("--state-file")
    ap.add_argument("--port-file", help="write the bound ports here (JSON)")
    ap.add_argument("--bundles-dir")
    ap.add_argument("--ingest-url", default="")
    ap.add_argument("--ingest-token-file", default="", help="the router's writer credential (0600 file)")
    ap.add_argument("--batch-ms", type=float, default=50)
    ap.add_argument("--buffer-max", type=int, default=100_000)
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--health-interval", type=float, default=0.5)
    ap.add_argument("--probe-percent", type=float, default=0.0,
                    help="share of live requests mirrored to an idle standby as a probe")
    args = ap.parse_args(argv)
    install_uvloop()
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
