"""`samantha bench ...`: benchmarks that print one JSON object."""

from __future__ import annotations

import typer

from samantha.cli.common import JsonOption, console, emit_result

app = typer.Typer(no_args_is_help=True, help="Benchmarks (each prints one JSON object with --json).")



@app.command()
def judge(as_json: bool = JsonOption,
          quick: bool = typer.Option(False, "--quick", help="fewer rollouts and a smaller store, for tests"),
          seed: int = typer.Option(7, help="random seed (runs are reproducible)")) -> None:
    """A/A false aborts, detection rate and time per degradation, and 100-gate evaluation latency."""
    from samantha.harness.bench.judge import run_judge_bench

    result = run_judge_bench(quick=quick, seed=seed, progress=not as_json)
    emit_result(result, as_json)


@app.command()
def mitigate(as_json: bool = JsonOption,
             quick: bool = typer.Option(False, "--quick", help="each scenario once, 2 fault-free minutes"),
             repeats: int = typer.Option(3, min=1, max=50, help="runs of each fault scenario"),
             fault_free_minutes: float = typer.Option(30.0, min=0, help="minutes of fault-free traffic to judge"),
             cube: str = typer.Option("twin", "--cube", help="twin (toy slots) or triton (real tritonservers; "
                                      "scenarios it cannot apply are listed as skipped)")) -> None:
    """Hard-fault time to mitigate, soft-fault time to detect, false actions: real scenario runs."""
    from samantha.cli.common import check_cube, err_console, require_triton
    from samantha.harness.bench.mitigate import run_mitigate_bench

    check_cube(cube)
    if cube == "triton":
        require_triton(cube)
    result = run_mitigate_bench(repeats=repeats, quick=quick, fault_free_minutes=fault_free_minutes, cube=cube,
                                log=lambda m: err_console.print(m, highlight=False))
    emit_result(result, as_json)


@app.command()
def chaos(as_json: bool = JsonOption,
          proposals: int = typer.Option(10_000, min=1, help="generated proposals through pre-flight"),
          kills: int = typer.Option(20, min=0, help="SIGKILLs of the daemon mid-experiment"),
          aborts: int = typer.Option(3, min=0, help="guard-breach runs timed from breach to revert"),
          quick: bool = typer.Option(False, "--quick", help="pre-flight only (no twin)"),
          seed: int = typer.Option(7)) -> None:
    """Chaos: verdict counts and pre-flight violations, leftovers after SIGKILL, gate breach -> fault reverted."""
    from samantha.harness.bench.chaos import run_chaos_bench

    def progress(msg: str) -> None:
        if not as_json:
            console.print(msg, highlight=False)

    result = run_chaos_bench(proposals=proposals, kills=kills, aborts=aborts, seed=seed, live=not quick,
                             progress=progress)
    emit_result(result, as_json)


@app.command()
def offline(as_json: bool = JsonOption,
            days: float = typer.Option(7.0, min=0.01, help="simulated days offline"),
            rps: float = typer.Option(200.0, min=0, help="request telemetry rate"),
            budget_mb: float = typer.Option(40.0, min=8, help="store.disk_budget_mb"),
            full_rate_hours: float = typer.Option(6.0, min=0, help="hours of raw rows at full rate at the start "
                                                  "(the rest: the rollup rows those rows make; see --help text)"),
            tail_full_hours: float = typer.Option(2.0, min=0, help="hours of raw rows at full rate at the end"),
            quick: bool = typer.Option(False, "--quick", help="1 day, 20 rps, short full-rate stretches (tests)")) -> None:
    """A week offline on a SimClock within the disk budget, then catch-up through a flapping link:
    records lost, duplicates at the hub, catch-up speed, safe-mode entry."""
    from rich.progress import Progress

    from samantha.harness.bench.offline import run_offline_bench

    kw = dict(days=days, rps=rps, budget_mb=budget_mb, full_rate_hours=full_rate_hours,
              tail_full_hours=tail_full_hours)
    if quick:
        kw.update(days=1.0, rps=20.0, full_rate_hours=1.0, tail_full_hours=1.0, series=10, module_days=0.5)
    if as_json:
        result = run_offline_bench(**kw)
    else:
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task("simulated offline week", total=None)
            result = run_offline_bench(**kw, progress=lambda done, total: bar.update(task, completed=done,
                                                                                     total=total))
    emit_result(result, as_json)


@app.command()
def footprint(as_json: bool = JsonOption,
              seconds: float = typer.Option(30.0, min=5, help="steady-state sampling window"),
              warmup: float = typer.Option(10.0, min=0, help="seconds after the first verdicts before sampling"),
              rps: float = typer.Option(200.0, min=1, help="twin load"),
              rounds: int = typer.Option(1, min=1, max=10, help="alternating before/after rounds"),
              baseline: str = typer.Option("", help="a checkout of another commit to compare against (ABBA)"),
              no_rollout: bool = typer.Option(False, "--no-rollout", help="skip the during-rollout probe"),
              eval_rows: int = typer.Option(10_000_000, min=0, help="store rows for eval_100_gates (0: skip)"),
              quick: bool = typer.Option(False, "--quick", help="10 s window, no rollout, 1 M-row eval store")) -> None:
    """Daemon CPU and memory beside a twin at 200 rps, during a rollout, and 100-gate evaluation CPU time."""
    from pathlib import Path

    from samantha.cli.common import err_console
    from samantha.harness.bench.footprint import run_footprint_bench

    if quick:
        seconds, warmup, no_rollout, eval_rows = 10.0, 3.0, True, min(eval_rows, 1_000_000)
    base = Path(baseline) if baseline else None
    if base is not None and not (base / "samantha").is_dir():
        err_console.print(f"--baseline {baseline}: not a Samantha checkout (no samantha/ package)")
        raise typer.Exit(2)
    result = run_footprint_bench(rps=rps, seconds=seconds, warmup=warmup, rounds=rounds, baseline=base,
                                 rollout=not no_rollout, eval_rows=eval_rows,
                                 log=lambda m: err_console.print(m, highlight=False))
    emit_result(result, as_json)


@app.command()
def fleet(as_json: bool = JsonOption,
          cubes: int = typer.Option(200, min=1, max=2000, help="simulated Cubes reconnecting at once"),
          days: float = typer.Option(7.0, min=0.05, max=30, help="days of outbox each Cube holds"),
          catchup_writers: int = typer.Option(2, min=1, max=16, help="writer processes during the catch-ups"),
          writers: str = typer.Option("1,2,4", help="writer process counts to compare, comma-separated"),
          link_kbps: float = typer.Option(0, min=0, max=10**6, help="throttle the regional link during the fault "
                                          "catch-up (KB/s; 0: no throttle), so a small fleet's lasts long enough"),
          link_cut_s: float = typer.Option(30.0, min=0, max=600, help="the regional link is cut this long"),
          scale_window_s: float = typer.Option(30.0, min=1, max=600, help="measuring window per writer count"),
          ack_wait_s: float = typer.Option(0, min=0, max=600, help="consumer ack_wait (0: the hub's default); "
                                           "a SIGKILLed writer's batches come back after it"),
          up_max_mb: float = typer.Option(1024.0, min=1.0, max=10**6, help="SAMANTHA_UP's bound in MiB "
                                          "(`hub serve --up-max-mb`)"),
          no_faults: bool = typer.Option(False, "--no-faults", help="skip the fault catch-up"),
          no_daemon: bool = typer.Option(False, "--no-daemon", help="skip the daemon footprint (NATS vs HTTP uplink)"),
          timeout_s: float = typer.Option(900.0, min=10, max=7200, help="bound on each catch-up"),
          quick: bool = typer.Option(False, "--quick", help="20 Cubes x 1 day, a 5 s link cut, 10 s windows, "
                                     "no daemon footprint")) -> None:
    """Real nats-server processes on loopback (3-node root, a regional leaf): N Cubes catch up at once;
    records/s, lost and duplicated records in Parquet, 1/2/4 writers, and the catch-up under faults."""
    from samantha.cli.common import err_console
    from samantha.harness.bench.fleet import run_fleet_bench
    from samantha.hub.streams import ACK_WAIT_S

    try:
        counts = tuple(int(x) for x in writers.split(","))
        if not counts or min(counts) < 1 or max(counts) > 16:
            raise ValueError
    except ValueError:
        err_console.print(f"--writers {writers!r}: comma-separated counts between 1 and 16 (e.g. 1,2,4)")
        raise typer.Exit(2) from None
    if quick:
        cubes, days, link_cut_s, scale_window_s = min(cubes, 20), min(days, 1.0), min(link_cut_s, 5.0), 10.0
        ack_wait_s, no_daemon = ack_wait_s or 10.0, True

    def log(msg: str) -> None:
        if not as_json:
            err_console.print(msg, highlight=False)

    kw = dict(cubes=cubes, days=days, writer_counts=counts, catchup_writers=catchup_writers, faults=not no_faults,
              daemon=not no_daemon, fault_link_kbps=link_kbps, link_cut_s=link_cut_s, scale_window_s=scale_window_s,
              ack_wait=ack_wait_s or ACK_WAIT_S, timeout_s=timeout_s, up_max_mb=up_max_mb, log=log)
    if as_json:
        result = run_fleet_bench(**kw)
    else:
        from rich.progress import Progress

        with Progress(console=err_console, transient=True) as bar:
            task = bar.add_task("one Cube's outbox (cloned per Cube)", total=None)
            result = run_fleet_bench(**kw, progress=lambda done, total: bar.update(task, completed=done, total=total))
    emit_result(result, as_json)
    if any("lost" in m or "duplicates" in m for m in result["targets"]["misses"]):
        raise typer.Exit(1)  # data lost or doubled; a throughput miss is a figure to report, not a failure
