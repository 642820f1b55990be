"""`samantha twin up|down|status|scenario|bench`: the reference Cube on this machine."""

from __future__ import annotations

from pathlib import Path

import typer

from samantha.cli.common import (
    ConfigOption,
    JsonOption,
    check_cube,
    console,
    emit_result,
    failure,
    get_config,
    print_json,
    require_triton,
)

app = typer.Typer(no_args_is_help=True, help="The reference Cube (twin): slots, router, proxies, load generator.")


@app.command()
def up(config: Path | None = ConfigOption, rps: float | None = typer.Option(None, help="load generator rate"),
       fresh: bool = typer.Option(False, "--fresh", help="forget the previous run's slots, weights and quarantine"),
       as_json: bool = JsonOption) -> None:
    """Start the twin in the background (router, slots A and B, proxies, load generator)."""
    from samantha.twin.lifecycle import TwinError
    from samantha.twin.lifecycle import up as twin_up

    try:
        st = twin_up(get_config(config), rps=rps, fresh=fresh)
    except TwinError as e:
        failure(str(e))
    if as_json:
        print_json(st)
    else:
        p = st["ports"]
        console.print(f"twin up: router 127.0.0.1:{p['router_port']} control :{p['control_port']} "
                      f"loadgen {st['rps']} rps, proxy={'on' if st['proxy'] else 'off'} (pgid {st['pgid']})")


@app.command()
def down(config: Path | None = ConfigOption, as_json: bool = JsonOption) -> None:
    """Stop every twin process (the whole process group)."""
    from samantha.twin.lifecycle import down as twin_down

    out = twin_down(get_config(config))
    print_json(out) if as_json else console.print("twin down" if out["stopped"] else out["reason"])
    if out.get("left"):
        failure(f"processes survived: {out['left']}")


@app.command()
def status(config: Path | None = ConfigOption, as_json: bool = JsonOption) -> None:
    """Processes, Cube state, per-slot traffic."""
    from samantha.twin.lifecycle import status as twin_status

    st = twin_status(get_config(config))
    if as_json:
        print_json(st)
    elif not st["running"]:
        console.print("twin: not running")
    else:
        from samantha.twin.view import status_table

        console.print(status_table(st))
    if not st["running"]:
        raise typer.Exit(1)


scenario_app = typer.Typer(no_args_is_help=True, help="Scenario timelines against the twin.")
app.add_typer(scenario_app, name="scenario")


@scenario_app.command("run")
def scenario_run(file: Path, config: Path | None = ConfigOption, as_json: bool = JsonOption,
                 attach: bool = typer.Option(False, "--attach", help="use the running twin instead of a fresh one"),
                 speed: float = typer.Option(1.0, min=0.1, max=20, help="run the timeline this many times faster"),
                 samantha: bool = typer.Option(True, "--samantha/--no-samantha",
                                               help="run Samantha beside the fresh twin and measure it"),
                 llm: bool = typer.Option(False, "--llm/--no-llm", help="the fresh daemon triages with the local LLM"),
                 cube: str = typer.Option("twin", "--cube", help="twin (toy slots) or triton (a fresh Cube of real "
                                          "tritonservers; for the scenarios it can apply)")
                 ) -> None:
    """Run a scenario; print one JSON object (faults with onset, detection and mitigation, actions, traffic)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from samantha.cli.common import bad_input, err_console
    from samantha.core.validated_yaml import DocumentError
    from samantha.harness.scenario_run import run_scenario
    from samantha.twin.scenario import cube_blockers, load_scenario

    check_cube(cube)
    try:
        sc = load_scenario(file)
    except DocumentError as e:
        bad_input(f"bad scenario:\n{e}")
    if cube != "twin":
        if attach or not samantha:
            bad_input(f"--cube {cube}: a fresh Cube with Samantha beside it only (no --attach, no --no-samantha)")
        blockers = cube_blockers(sc, cube)
        if blockers:
            bad_input(f"{file}: cannot run on --cube {cube}:\n" + "\n".join(f"  {f}: {r}" for f, r in blockers))
        require_triton(cube)
    with Progress(TextColumn(f"scenario {sc.name}"), BarColumn(), TextColumn("{task.completed:.0f}/{task.total:.0f} s"),
                  TimeElapsedColumn(), console=err_console, transient=True) as bar:
        task = bar.add_task("run", total=sc.duration_s)
        try:
            out = run_scenario(sc, speed=speed, attach=get_config(config) if attach else None, samantha=samantha, llm=llm,
                               cube=cube, progress=lambda t, _msg: bar.update(task, completed=min(t, sc.duration_s)))
        except RuntimeError as e:
            failure(str(e))
    emit_result(out, as_json)


@app.command()
def bench(as_json: bool = JsonOption, step_s: float = typer.Option(3.0, help="seconds per rate step"),
          flips: int = typer.Option(10, help="flips to time under 200 rps")) -> None:
    """Router max rps (p99 < 50 ms, proxies in path) and flip time under load; one JSON object."""
    from samantha.harness.bench.twin import run_bench

    out = run_bench(step_s=step_s, flips=flips)
    emit_result(out, as_json)
