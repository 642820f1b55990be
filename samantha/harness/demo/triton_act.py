"""Act: a real Triton Cube. Two tritonservers behind the cube runtime: a V2 rollout (the active Triton's own
counters scraped and judged by a server gate), a NaN canary caught in shadow and quarantined, a malformed
bundle refused with the field named. Skips where Triton cannot start."""

from __future__ import annotations

import time

import httpx

from samantha.core.config import SamanthaConfig, ScrapeTarget
from samantha.cube.fault_profile import FaultProfile
from samantha.gates.engine import GateEngine
from samantha.gates.registry import GateRegistry
from samantha.harness.triton_cube import V2_REQUEST, TritonCube
from samantha.harness.triton_process import TritonUnavailable, find_triton
from samantha.telemetry import TelemetryStore
from samantha.telemetry.scrape import PrometheusScraper

TITLE = "Real Cube: NVIDIA Triton behind the cube runtime (KServe V2, triton-repository slots)"


def _infer(cube: TritonCube, n: int) -> list[httpx.Response]:
    with httpx.Client(base_url=cube.data_url, timeout=10) as c:
        return [c.post("/v2/models/sensor/infer", json=V2_REQUEST) for _ in range(n)]


class _ScrapedActive:
    """The active slot's Triton scraped before and after the block into a DuckDB file of its own, then judged
    by the builtin server gate on Triton's own failure counters."""

    def __init__(self, ctx, cube: TritonCube) -> None:
        state = cube.state()
        self.slot = state["active"]
        roles = {s["name"]: {"role": s["role"], "bundle": s.get("bundle_id")} for s in state["slots"]}
        url = f"http://127.0.0.1:{cube.slots[self.slot].metrics_port}/metrics"
        self.store = TelemetryStore.open(SamanthaConfig(data_dir=str(ctx.workdir / "triton-metrics")))
        self.scraper = PrometheusScraper(self.store, [ScrapeTarget(name=f"triton-{self.slot}", url=url,
                                                                   slot=self.slot)], slot_roles=lambda: roles)

    def __enter__(self) -> _ScrapedActive:
        self.scraper.scrape_once()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.scraper.scrape_once()
            self.store.flush()
            gate = GateRegistry.with_builtins().get("triton-active-failure-ratio")
            self.verdict = GateEngine(self.store).evaluate([gate])[0]
        finally:
            self.scraper.stop()
            self.store.close()


def run(ctx) -> None:
    con = ctx.console
    try:
        find_triton()
        cube = TritonCube(ctx.workdir / "triton-cube").start()
    except TritonUnavailable as e:
        con.print(f"[yellow]skipped:[/yellow] Triton cannot start here ({e})")
        return
    try:
        t0 = time.monotonic()
        if cube.op("load", bundle=cube.bundle("v1", "1")).status_code != 200 or cube.op("flip").status_code != 200:
            raise RuntimeError("the first Triton bundle did not load")
        with _ScrapedActive(ctx, cube) as scraped:
            ok = sum(r.status_code == 200 for r in _infer(cube, 20))
        con.print(f"  sensor@1 loaded into slot B via /v2/repository (verify, place, load, ready, warm-up) and "
                  f"promoted in {time.monotonic() - t0:.1f} s; {ok}/20 V2 requests answered through the router")
        v = scraped.verdict
        con.print(f"  Triton's own counters scraped from slot {scraped.slot}'s --metrics-port: gate {v.gate} "
                  f"{v.status} ({v.reason})")
        cube.op("load", bundle=cube.bundle("nan", "2", profile=FaultProfile(nan_rate=1.0)))
        cube.op("shadow", enabled=True)
        served = sum(r.status_code == 200 for r in _infer(cube, 20))
        time.sleep(0.3)
        shadow = cube.stats()["shadow"]
        bad = next(s["bundle_id"] for s in cube.state()["slots"] if s["role"] == "standby")
        cube.op("quarantine", bundle_id=bad, reason="NaN outputs in shadow")
        again = cube.op("load", bundle="nan").json()["error"]["code"]
        con.print(f"  NaN canary in shadow: {shadow['errors']}/{shadow['requests']} shadow answers were errors, "
                  f"{served}/20 live answers fine; quarantined, reload -> {again}")
        (cube.root / "v1" / "config.pbtxt").write_text('backend: "python"\n')
        err = cube.op("load", bundle="v1").json()["error"]
        con.print(f"  a tampered config.pbtxt: refused ({err['code']}, field {err.get('field')}): {err['reason'][:90]}")
        if v.status != "pass" or ok != 20 or served != 20 or shadow["errors"] < 18 or again != "quarantined":
            raise RuntimeError(f"the Triton Cube did not behave as expected: gate {v.status}, {ok}/20 served, {served}/20 "
                               f"live in shadow, {shadow['errors']} shadow errors, reload -> {again}")
        ctx.facts["real Triton Cube: NaN canary caught in shadow"] = f"{shadow['errors']}/{shadow['requests']} errors"
        ctx.facts["real Triton Cube: active failure ratio (Triton's counters)"] = v.values.get("observed")
    finally:
        cube.stop()
