"""A Cube runtime in front of real model servers: the twin's router and control API, adapter slots.

The same Router and CubeControl the twin runs (weights, shadow, per-request telemetry, atomic flip,
idempotent request ids, quarantine, safe mode, persisted state); only the data-path protocol
(`cube.protocol`: open-inference or openai) and the slot lifecycle (`cube.adapter`:
triton-repository or command) differ. Configured by the `cube:` section of samantha.yaml
(`-c FILE`); each command-line option overrides its field. A bad section or option exits 2 naming
the field.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

from pydantic import ValidationError

from samantha.core.config import CubeConfig, SamanthaConfig, load_config
from samantha.core.validated_yaml import DocumentError
from samantha.cube.command_slot import CommandSlot
from samantha.cube.open_inference import HttpxUpstream, OpenInferenceProtocol
from samantha.cube.openai_compat import OpenAIProtocol
from samantha.cube.triton_slot import TritonRepositorySlot
from samantha.twin.control import CubeControl, SlotRecord
from samantha.twin.http import Upstream, install_uvloop
from samantha.twin.router import Link, Router, RouteTable
from samantha.twin.router_process import serve_until_signalled
from samantha.twin.telemetry_push import TelemetryPusher

EXIT_BAD_INPUT = 2
# command-line option -> (field path in the cube section, is a path: made absolute so data_dir does not apply)
OVERRIDES: dict[str, tuple[tuple[str, ...], bool]] = {
    "protocol": (("protocol",), False), "adapter": (("adapter",), False), "host": (("host",), False),
    "port": (("port",), False), "control_port": (("control_port",), False),
    "slot_a_url": (("slots", "a", "url"), False), "slot_a_repo": (("slots", "a", "repository"), True),
    "slot_a_data": (("slots", "a", "data_url"), False), "slot_a_port": (("slots", "a", "port"), False),
    "slot_b_url": (("slots", "b", "url"), False), "slot_b_repo": (("slots", "b", "repository"), True),
    "slot_b_data": (("slots", "b", "data_url"), False), "slot_b_port": (("slots", "b", "port"), False),
    "trusted": (("trusted_keys",), True), "state_file": (("state_file",), True),
    "bundles_dir": (("bundles_dir",), True), "ingest_url": (("ingest_url",), False),
    "ingest_token_file": (("ingest_token_file",), True), "batch_ms": (("telemetry_batch_ms",), False),
    "buffer_max": (("telemetry_buffer_max",), False), "timeout": (("timeouts", "request_s"), False),
    "ready_timeout": (("timeouts", "ready_s"), False), "stop_grace": (("timeouts", "stop_grace_s"), False),
    "health_interval": (("timeouts", "health_interval_s"), False), "data_client": (("data_client",), False),
}


def _bad(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(EXIT_BAD_INPUT)


def _option(field: str) -> str:
    for opt, (path, _) in OVERRIDES.items():
        if "cube." + ".".join(path) == field:
            return f" (or --{opt.replace('_', '-')})"
    return ""


def resolve(args: argparse.Namespace) -> tuple[SamanthaConfig, CubeConfig]:
    """The config file's `cube:` section with the given options laid over it, checked for the chosen adapter."""
    try:
        cfg = load_config(args.config)
    except DocumentError as e:
        _bad(f"bad config:\n{e}")
    doc: dict[str, Any] = cfg.cube.model_dump()
    for opt, (path, is_path) in OVERRIDES.items():
        value = getattr(args, opt)
        if value is None:
            continue
        node = doc
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = None if value == "" else str(Path(value).absolute()) if is_path else value
    try:
        cube = CubeConfig.model_validate(doc)
    except ValidationError as e:
        err = e.errors()[0]
        field = "cube." + ".".join(map(str, err["loc"]))
        _bad(f"{field}: {err['msg']}{_option(field)}")
    problems = cube.problems()
    if problems:
        _bad("the cube section is incomplete:\n" + "\n".join(f"  {f}: {r}{_option(f)}" for f, r in problems))
    return cfg, cube


def _data_client(kind: str, url: str) -> Any:
    """`pool`: the twin's keep-alive pool (httptools, no per-request client overhead); `httpx`: keep-alive httpx."""
    if kind == "httpx":
        return HttpxUpstream(url)
    u = urlsplit(url)
    if u.scheme != "http" or not u.hostname or not u.port:
        _bad(f"cube.slots.*.data_url/url: {url!r} must be http://host:port for the pool client (or data_client httpx)")
    return Upstream(u.hostname, u.port)


def _adapter(cfg: SamanthaConfig, cube: CubeConfig, name: str, trusted: Path) -> tuple[Any, str]:
    """The slot's lifecycle adapter and its own base URL."""
    s = getattr(cube.slots, name.lower())
    t = cube.timeouts
    if cube.adapter == "command":
        work = cfg.resolve(cube.command.work_dir)
        return CommandSlot(name, cube.command, trusted, port=s.port, work_dir=work, ready_timeout_s=t.ready_s,
                           stop_grace_s=t.stop_grace_s, request_timeout_s=t.request_s), f"http://127.0.0.1:{s.port}"
    return TritonRepositorySlot(s.url, cfg.resolve(s.repository), trusted, ready_timeout_s=t.ready_s), s.url


async def serve(cfg: SamanthaConfig, cube: CubeConfig, port_file: str | None) -> None:
    trusted = cfg.resolve(cube.trusted_keys)
    slots: dict = {}
    for name in ("A", "B"):
        adapter, url = _adapter(cfg, cube, name, trusted)
        data = getattr(cube.slots, name.lower()).data_url or url
        slots[name] = SlotRecord(name=name, data=_data_client(cube.forwarding, data), control_url=url, adapter=adapter)
    token = cfg.resolve(cube.ingest_token_file) if cube.ingest_token_file else None
    pusher = TelemetryPusher(cube.ingest_url, batch_ms=cube.telemetry_batch_ms, max_events=cube.telemetry_buffer_max,
                             token_file=token)
    protocol = OpenAIProtocol() if cube.protocol == "openai" else OpenInferenceProtocol()
    router = Router(RouteTable(Link("A", slots["A"].data, None), None, 0.0, False), pusher,
                    timeout_s=cube.timeouts.request_s, protocol=protocol)
    state_file = cfg.resolve(cube.state_file) if cube.state_file else None
    if state_file is not None:
        state_file.parent.mkdir(parents=True, exist_ok=True)
    control = CubeControl(router, slots, trusted_path=trusted, state_file=state_file,
                          bundles_dir=cfg.resolve(cube.bundles_dir), health_interval_s=cube.timeouts.health_interval_s)
    try:
        await control.restore_slots()
        settings = argparse.Namespace(host=cube.host, port=cube.port, control_port=cube.control_port, port_file=port_file)
        await serve_until_signalled(router, control, pusher, settings, f"cube runtime ({cube.protocol}, {cube.adapter})")
    finally:
        for s in slots.values():
            await s.data.aclose() if isinstance(s.data, HttpxUpstream) else s.data.close()
            await s.adapter.close()  # a command slot's server goes with the runtime that started it
        await control.http.aclose()


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="samantha cube serve", description=(
        "The cube runtime (router + control API) over two slots. Reads the cube: section of samantha.yaml; "
        "each option below overrides its field."))
    ap.add_argument("-c", "--config", help="samantha.yaml (default: $SAMANTHA_CONFIG or ./samantha.yaml)")
    ap.add_argument("--port-file", help="write the bound ports here (JSON)")
    ap.add_argument("--protocol", choices=("open-inference", "openai"))
    ap.add_argument("--adapter", choices=("triton-repository", "command"))
    ap.add_argument("--host")
    ap.add_argument("--port", type=int)
    ap.add_argument("--control-port", type=int)
    for s in ("a", "b"):
        ap.add_argument(f"--slot-{s}-url", help="triton-repository: the slot's Triton HTTP base URL")
        ap.add_argument(f"--slot-{s}-repo", help="triton-repository: the slot's model repository directory")
        ap.add_argument(f"--slot-{s}-port", type=int, help="command: the port the slot's server listens on")
        ap.add_argument(f"--slot-{s}-data", help="data-path base URL (a fault proxy); default: the slot's URL")
    ap.add_argument("--trusted", help="trusted publisher keys (dir of PEM files, or one PEM file)")
    ap.add_argument("--state-file")
    ap.add_argument("--bundles-dir")
    ap.add_argument("--ingest-url")
    ap.add_argument("--ingest-token-file")
    ap.add_argument("--batch-ms", type=float)
    ap.add_argument("--buffer-max", type=int)
    ap.add_argument("--timeout", type=float, help="router -> slot request timeout (s)")
    ap.add_argument("--ready-timeout", type=float, help="bound on a slot becoming ready after a load (s)")
    ap.add_argument("--stop-grace", type=float, help="command: SIGKILL a slot's server this long after SIGTERM (s)")
    ap.add_argument("--health-interval", type=float)
    ap.add_argument("--data-client", choices=("pool", "httpx"),
                    help="how inference is forwarded to the slots (both keep connections alive)")
    return ap


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    cfg, cube = resolve(args)
    install_uvloop()
    asyncio.run(serve(cfg, cube, args.port_file))


if __name__ == "__main__":
    main()
