"""Act: a good bundle rolls out step by step to an atomic flip; a bad one is caught, snapped back
and quarantined. Real twin, real store, the real gate judge; times measured from the router's telemetry."""

from __future__ import annotations

import socket
import time

TITLE = "Progressive rollout: a good bundle promoted, a bad one caught and quarantined"


def _follow(ctx, host, limit_s: float):
    from rich.live import Live

    from samantha.sre.rollout_view import render

    deadline = time.monotonic() + limit_s
    st = host.controller.status()
    with Live(render(st), console=ctx.console, refresh_per_second=8) as live:
        while time.monotonic() < deadline:
            time.sleep(0.1)
            st = host.controller.status()
            live.update(render(st))
            if st.phase in ("promoted", "aborted", "failed"):
                break
    return st


def run(ctx) -> None:
    from samantha.api.rollout_host import RolloutHost
    from samantha.config import TwinConfig
    from samantha.cube.client import CubeClient
    from samantha.gates.rollout_policy import RolloutPolicy
    from samantha.signing import KeyPair
    from samantha.twin import lifecycle
    from samantha.twin.bundle import build_bundle
    from samantha.twin.fault_profile import FaultProfile

    step_s, soak_s = (0.5, 1.0) if ctx.fast else (2.0, 5.0)
    # live latency, errors and divergence: the shadow-latency gates' calibration false-aborts under
    # heavy machine load (see tests/rollout/kit.py)
    policy = RolloutPolicy(name="demo", gates=["canary-errors", "canary-latency", "canary-latency-tail",
                                               "canary-divergence"],
                           shadow={"min_samples": 100, "min_duration": step_s},
                           steps=[{"weight": w, "min_samples": 20, "min_duration": step_s} for w in (1, 5, 25, 50, 100)],
                           soak=soak_s)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ports = {f: 0 for f in ("router_port", "control_port", "slot_a_port", "slot_b_port", "proxy_api_port",
                            "proxy_a_port", "proxy_b_port", "loadgen_port")}
    cfg = ctx.config.model_copy(update={"data_dir": str(ctx.workdir / "rollout-act"), "twin": TwinConfig(
        **ports, ingest_url=f"http://127.0.0.1:{port}/v1/ingest/requests", rps=150)})
    st = lifecycle.up(cfg)
    try:
        cube = CubeClient(lifecycle.control_url(st))
        with RolloutHost(cfg, cube, port, policy=policy, max_step_s=60) as host:
            key = KeyPair.load(st["signing_key"])
            good = build_bundle(f"{st['bundles_dir']}/v2", name="sensor-mlp", version="2", seed=0, key=key)
            bad = build_bundle(f"{st['bundles_dir']}/v3-bad", name="sensor-mlp", version="3", seed=0, key=key,
                               profile=FaultProfile(error_rate=0.2))
            time.sleep(1.0)  # incumbent traffic first
            ctx.console.print(f"rolling out [bold]{good.label}[/bold] ({good.bundle_id[:12]}), policy: shadow, "
                              f"1/5/25/50/100 %, {step_s:g} s per step, soak {soak_s:g} s")
            host.controller.start("v2", "demo-good")
            s1 = _follow(ctx, host, 90)
            if s1.phase != "promoted":
                raise RuntimeError(f"the good rollout ended {s1.phase}: {s1.rollout.reason}")
            state = cube.state()
            ctx.console.print(f"[green]promoted[/green]: active slot {state.active} runs {good.label}; the old bundle "
                              f"stays in standby as last-known-good ({s1.rollout.last_known_good[:12]})")

            ctx.console.print(f"rolling out [bold]{bad.label}[/bold] ({bad.bundle_id[:12]}: fails 20% of inferences)")
            t_start = time.time()
            host.controller.start("v3-bad", "demo-bad")
            s2 = _follow(ctx, host, 60)
            if s2.phase != "aborted" or not s2.rollout.quarantined:
                raise RuntimeError(f"the bad rollout was not caught: {s2.phase} {s2.rollout.reason}")
            time.sleep(0.5)
            host.store.flush()
            first = host.store.query_scalar("SELECT min(ts) FROM requests WHERE bundle = ?", [bad.bundle_id])
            last = host.store.query_scalar("SELECT max(ts) FROM requests WHERE bundle = ?", [bad.bundle_id])
            fail = s2.rollout.step_verdicts[-1]
            snap = next(d for d in s2.rollout.decisions if d.kind == "weights" and d.corrective)
            where = "shadow scoring (no user saw it)" if fail.step == "shadow" else f"step {fail.weight:g}%"
            ctx.console.print(f"[red]caught[/red] at {where}: first request on it {first - t_start:.2f} s after start, "
                              f"failing verdict {fail.ts - first:.2f} s later, weights back in "
                              f"{snap.duration_ms:.0f} ms, last request on it {last - first:.2f} s after its first")
            try:
                cube.load(f"{st['bundles_dir']}/v3-bad", request_id="demo-reload")
                raise RuntimeError("a quarantined bundle was loaded again")
            except Exception as e:  # noqa: BLE001 - CubeError expected
                ctx.console.print(f"loading it again is refused: {e}")
            ctx.facts["rollout: good bundle promoted in s"] = round(s1.rollout.ended_at - s1.rollout.started_at, 1)
            ctx.facts["rollout: bad bundle time to detect s"] = round(fail.ts - first, 2)
            ctx.facts["rollout: bad bundle time to traffic-off s"] = round(last - first, 2)
        cube.close()
    finally:
        out = lifecycle.down(cfg)
        ctx.console.print(f"twin down: {'no process left' if not out.get('left') else out['left']}")
