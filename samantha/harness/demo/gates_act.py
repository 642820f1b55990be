"""Act: verification gates judging a canary live - green while it behaves, red when it turns bad.

Driven by telemetry recorded from the twin (samantha/harness/fixtures/twin_recording: an A/A
canary, then a canary whose bundle answers 20% of requests with errors), replayed tick by
tick into a fresh DuckDB store on a simulated clock (the story act shows the same gates live).
"""

from __future__ import annotations

import time

import numpy as np
import pyarrow.parquet as pq
from rich.live import Live
from rich.table import Table

from samantha.core.clock import SimClock
from samantha.gates.engine import GateEngine
from samantha.gates.registry import GateRegistry
from samantha.gates.rollout_policy import RolloutPolicy
from samantha.gates.verdict import Verdict
from samantha.harness.traffic_model import TWIN_RECORDING
from samantha.telemetry import TelemetryStore

TITLE = "Verification gates: green on a good canary, red on a bad one"
_STYLE = {"pass": "[green]pass[/green]", "fail": "[bold red]FAIL[/bold red]", "inconclusive": "[yellow]wait[/yellow]"}


def _view(rel: float, bundle: str, verdicts: list[Verdict], first_red: float | None) -> Table:
    t = Table(title=f"t = {rel:+6.1f} s from the bad canary's first request   (canary {bundle[:12]})")
    for col in ("gate", "status", "evidence"):
        t.add_column(col)
    for v in verdicts:
        t.add_row(v.gate, _STYLE[v.status], v.reason[:90])
    if first_red is not None:
        t.caption = f"[bold red]red {first_red:.2f} s after the bad canary's first request[/bold red]"
    return t


def _sketch_line(ctx, engine: GateEngine, store: TelemetryStore, now: float) -> None:
    """The latency SLO gate's p99 comes from the carried DDSketch: show it beside the exact quantile of the rows."""
    gate = GateRegistry.with_builtins().get("latency-slo-p99")
    v = engine.evaluate([gate], now)[0]
    rows = store.read_arrow("SELECT latency_ms FROM requests WHERE slot = 'active' AND ts > ? AND ts <= ?",
                            [now - gate.window, now]).column("latency_ms").to_numpy()
    if v.values.get("observed") is None or rows.size == 0:
        return
    acc = v.values.get("quantile_relative_accuracy")
    exact = float(np.quantile(rows, 0.99))
    line = (f"{gate.name}: p99 {v.values['observed']:.2f} ms from the latency sketch vs {exact:.2f} ms exact over "
            f"{rows.size} rows" + (f" (bound +/-{acc:.0%})" if acc else " (exact: not sketched)"))
    console = ctx.console
    console.print(line)
    ctx.facts["gates: sketched p99"] = line


def run(ctx) -> None:
    console = ctx.console
    console.print("[dim]source: telemetry recorded from the twin (200 rps, shadow scoring on), replayed into a "
                  "fresh DuckDB store on a simulated clock; the live-twin wiring comes with the merge[/dim]")
    req = pq.read_table(TWIN_RECORDING / "requests.parquet")
    ts = req.column("ts").to_numpy()
    slot = np.asarray(req.column("slot").to_pylist())
    bundle = np.asarray(req.column("bundle").to_pylist())
    standby = slot == "standby"
    starts = {b: float(ts[standby & (bundle == b)].min()) for b in dict.fromkeys(bundle[standby])}
    (good, good_t), (bad, bad_t) = sorted(starts.items(), key=lambda kv: kv[1])[:2]
    t_from, t_to = bad_t - (6.0 if ctx.fast else 20.0), bad_t + (2.0 if ctx.fast else 6.0)
    tick = 0.25 if ctx.fast else 0.5
    clock = SimClock(float(ts.min()))
    store = TelemetryStore(ctx.workdir / "gates.duckdb", ctx.config.store, clock)
    div = req.column("divergence").to_numpy(zero_copy_only=False).astype(float)
    ok = req.column("ok").to_numpy(zero_copy_only=False).astype(bool)
    shadow = req.column("shadow").to_numpy(zero_copy_only=False).astype(bool)
    lat = req.column("latency_ms").to_numpy()

    def ingest(a: int, b: int) -> None:
        if b > a:
            store.ingest_request_columns(ts[a:b], slot[a:b], bundle[a:b], lat[a:b], ok[a:b], div[a:b], shadow[a:b])
        store.flush()

    gates = RolloutPolicy().step_gates("shadow", GateRegistry.with_builtins())
    engine = GateEngine(store, clock)
    try:
        clock.advance(t_from - clock.time())
        done = int(np.searchsorted(ts, t_from, "right"))
        ingest(0, done)
        first_red = None
        greens = 0
        now = t_from
        with Live(console=console, refresh_per_second=8, transient=False) as live:
            while now < t_to:
                now += tick
                clock.advance(tick)
                upto = int(np.searchsorted(ts, now, "right"))
                ingest(done, upto)
                done = upto
                canary, since = (bad, bad_t) if now >= bad_t else (good, good_t)
                verdicts = engine.evaluate(gates, now, rollout_start=since, canary_bundle=canary)
                if canary == good:
                    greens += all(v.status != "fail" for v in verdicts)
                elif first_red is None and any(v.status == "fail" for v in verdicts):
                    first_red = now - bad_t
                live.update(_view(now - bad_t, canary, verdicts, first_red))
                time.sleep(0.02 if ctx.fast else 0.15)
        console.print()
        if first_red is None:
            raise RuntimeError("the gates did not turn red on the bad canary")
        console.print(f"A/A canary: no gate failed in {greens} evaluations; bad canary: red after "
                      f"{first_red:.2f} s (evaluated every {tick} s of simulated time)")
        ctx.facts["gates: bad canary caught after"] = f"{first_red:.2f} s (recorded twin telemetry, 0 false alarms A/A)"
        _sketch_line(ctx, engine, store, now)
    finally:
        store.close()
