"""`python -m samantha.proxy --host 127.0.0.1 --port N [--config F] [--ready-file F]`.

Prints `samantha-proxy ready <url>` on stdout once the control API listens (and writes the
url to --ready-file if given); SIGTERM or SIGINT stops listeners and connections, exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from samantha.core.clock import REAL_CLOCK
from samantha.proxy.registry import Registry
from samantha.proxy.server import ProxyRuntime, bind_control_socket, new_event_loop

READY_PREFIX = "samantha-proxy ready "


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m samantha.proxy", description=__doc__)
    parser.add_argument("--host", default=None)
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--config", default=None, help="samantha.yaml (proxy.host/proxy.port are the defaults)")
    parser.add_argument("--ready-file", default=None, help="write the control URL here once listening")
    parser.add_argument("--strict", action="store_true",
                        help="validate every toxic strictly (unknown keys, negative values, toxicity outside 0..1 "
                             "are refused), not only requests carrying X-Samantha-Strict: 1")
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from samantha.core.config import load_config
    from samantha.core.validated_yaml import DocumentError

    try:
        cfg = load_config(args.config).proxy
    except DocumentError as e:
        print(f"bad config:\n{e}", file=sys.stderr)
        return 2
    host = args.host or cfg.host
    port = cfg.port if args.port is None else args.port
    try:
        sock = bind_control_socket(host, port)
    except OSError as e:
        print(f"cannot listen on {host}:{port}: {e}", file=sys.stderr)
        return 1

    def ready(url: str) -> None:
        if args.ready_file:
            tmp = Path(args.ready_file + ".tmp")
            tmp.write_text(url + "\n")
            tmp.replace(args.ready_file)
        sys.stdout.write(READY_PREFIX + url + "\n")
        sys.stdout.flush()

    async def run() -> None:
        runtime = ProxyRuntime(Registry(REAL_CLOCK, strict=args.strict), sock)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, runtime.stop_event.set)
        await runtime.run(on_ready=ready)

    loop = new_event_loop()
    try:
        loop.run_until_complete(run())
    finally:
        loop.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
