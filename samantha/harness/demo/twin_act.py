"""Act: the twin Cube comes up (two slots behind fault proxies, router, load); a bad canary shows live."""

from __future__ import annotations

import time

from rich.live import Live

TITLE = "The twin Cube: slots, router, proxies, live traffic"


def run(ctx) -> None:
    from samantha.core.config import TwinConfig
    from samantha.cube.bundle import SigningKey
    from samantha.cube.client import CubeClient
    from samantha.cube.fault_profile import FaultProfile
    from samantha.twin import lifecycle
    from samantha.twin.toy_bundle import build_bundle
    from samantha.twin.view import status_table

    ports = {f: 0 for f in ("router_port", "control_port", "slot_a_port", "slot_b_port", "proxy_api_port",
                            "proxy_a_port", "proxy_b_port", "loadgen_port")}
    cfg = ctx.config.model_copy(update={"data_dir": str(ctx.workdir / "twin-act"),
                                        "twin": TwinConfig(**ports, ingest_url=None, rps=100)})
    st = lifecycle.up(cfg)
    try:
        ctx.console.print(f"twin up: 5 processes in group {st['pgid']}, proxy in front of each slot: {st['proxy']}")
        with CubeClient(lifecycle.control_url(st)) as cube:
            key = SigningKey.load(st["signing_key"])
            m = build_bundle(f"{st['bundles_dir']}/demo-canary", name="sensor-mlp", version="2", seed=1, key=key,
                             profile=FaultProfile(error_rate=0.2, latency_ms=15))
            _tampered_copy_refused(ctx, cube, f"{st['bundles_dir']}", "demo-canary")
            cube.load("demo-canary", request_id="demo-load")
            cube.set_weights(25, request_id="demo-w25")
            ctx.console.print(f"canary {m.label} ({m.bundle_id[:12]}, signed with model-signing by key {m.key_id}: "
                              f"20% errors, +15 ms) at 25% of traffic")
            seconds = 2.0 if ctx.fast else 8.0
            end = time.monotonic() + seconds
            with Live(status_table(lifecycle.status(cfg)), console=ctx.console, refresh_per_second=4) as live:
                while time.monotonic() < end:
                    time.sleep(0.5)
                    live.update(status_table(lifecycle.status(cfg)))
            final = lifecycle.status(cfg)
        slots = final["router"]["slots"]
        ctx.facts["twin active p50 ms"] = slots["active"]["p50_ms"]
        ctx.facts["twin canary error rate"] = slots["standby"]["error_rate"]
    finally:
        out = lifecycle.down(cfg)
        ctx.console.print(f"twin down: {'no process left' if not out.get('left') else out['left']}")


def _tampered_copy_refused(ctx, cube, bundles_dir: str, name: str) -> None:
    """Supply chain: a copy of the canary with one flipped byte in its weights is refused by the Cube."""
    import shutil
    from pathlib import Path

    from samantha.cube.protocol import CubeError

    bad = Path(bundles_dir) / f"{name}-tampered"
    shutil.rmtree(bad, ignore_errors=True)
    shutil.copytree(Path(bundles_dir) / name, bad)
    w = bad / "model.npz"
    data = w.read_bytes()
    w.write_bytes(data[:-1] + bytes([data[-1] ^ 0x01]))
    try:
        cube.load(bad.name, request_id="demo-load-tampered")
        ctx.console.print("[red]the tampered copy was accepted[/red]")
        ctx.facts["tampered bundle refused"] = "no"
    except CubeError as e:
        ctx.console.print(f"a tampered copy (one byte flipped) is refused: {e.code}: {e.reason}", highlight=False)
        ctx.facts["tampered bundle refused"] = e.code
    finally:
        shutil.rmtree(bad, ignore_errors=True)
