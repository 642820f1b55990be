"""A Cube runtime in front of real model servers: the twin's router and control API, adapter slots.

The same Router and CubeControl the twin runs (weights, shadow, per-request telemetry, atomic flip,
idempotent request ids, quarantine, safe mode, persisted state); only the data-path protocol
(cube.open_inference) and the slot lifecycle (cube.triton_slot) differ. Slots' data paths are
forwarded over keep-alive httpx to each server (or the fault proxy in front of it).
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from samantha.cube.open_inference import HttpxUpstream, OpenInferenceProtocol
from samantha.cube.triton_slot import TritonRepositorySlot
from samantha.twin.control import CubeControl, SlotRecord
from samantha.twin.http import Upstream, install_uvloop
from samantha.twin.router import Link, Router, RouteTable
from samantha.twin.router_process import serve_until_signalled
from samantha.twin.telemetry_push import TelemetryPusher


def _data_client(kind: str, url: str) -> Any:
    """`pool`: the twin's keep-alive pool (httptools, no per-request client overhead); `httpx`: keep-alive httpx."""
    if kind == "httpx":
        return HttpxUpstream(url)
    u = urlsplit(url)
    if u.scheme != "http" or not u.hostname or not u.port:
        raise SystemExit(f"--slot-*-data/url: {url!r} must be http://host:port for the pool client (or --data-client httpx)")
    return Upstream(u.hostname, u.port)


async def serve(args: argparse.Namespace) -> None:
    trusted = Path(args.trusted)
    slots: dict = {}
    for name, data, ctrl, repo in (("A", args.slot_a_data, args.slot_a_url, args.slot_a_repo),
                                   ("B", args.slot_b_data, args.slot_b_url, args.slot_b_repo)):
        adapter = TritonRepositorySlot(ctrl, Path(repo), trusted, ready_timeout_s=args.ready_timeout)
        slots[name] = SlotRecord(name=name, data=_data_client(args.data_client, data or ctrl), control_url=ctrl,
                                 adapter=adapter)
    pusher = TelemetryPusher(args.ingest_url or None, batch_ms=args.batch_ms, max_events=args.buffer_max,
                             token_file=Path(args.ingest_token_file) if args.ingest_token_file else None)
    router = Router(RouteTable(Link("A", slots["A"].data, None), None, 0.0, False), pusher, timeout_s=args.timeout,
                    protocol=OpenInferenceProtocol())
    control = CubeControl(router, slots, trusted_path=trusted,
                          state_file=Path(args.state_file) if args.state_file else None,
                          bundles_dir=Path(args.bundles_dir) if args.bundles_dir else None,
                          health_interval_s=args.health_interval)
    await control.restore_slots()
    await serve_until_signalled(router, control, pusher, args, "cube runtime (open-inference, triton-repository)")
    for s in slots.values():
        await s.data.aclose() if isinstance(s.data, HttpxUpstream) else s.data.close()
        await s.adapter.close()
    await control.http.aclose()


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m samantha.twin.cube_runtime")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--control-port", type=int, default=0)
    for s in ("a", "b"):
        ap.add_argument(f"--slot-{s}-url", required=True, help="the slot's Triton HTTP base URL (control, health)")
        ap.add_argument(f"--slot-{s}-repo", required=True, help="the slot's Triton model repository directory")
        ap.add_argument(f"--slot-{s}-data", default="", help="data-path base URL (a fault proxy); default: the URL")
    ap.add_argument("--trusted", required=True, help="trusted publisher keys (dir of PEM files, or one PEM file)")
    ap.add_argument("--state-file")
    ap.add_argument("--port-file", help="write the bound ports here (JSON)")
    ap.add_argument("--bundles-dir")
    ap.add_argument("--ingest-url", default="")
    ap.add_argument("--ingest-token-file", default="")
    ap.add_argument("--batch-ms", type=float, default=50)
    ap.add_argument("--buffer-max", type=int, default=100_000)
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--ready-timeout", type=float, default=60.0, help="bound on a model becoming ready after load")
    ap.add_argument("--health-interval", type=float, default=0.5)
    ap.add_argument("--data-client", choices=("pool", "httpx"), default="pool",
                    help="how inference is forwarded to the slots (both keep connections alive)")
    return ap


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    install_uvloop()
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
