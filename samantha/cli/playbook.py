"""`samantha playbook schema|lint|test`: write, check and backtest playbooks before they ship."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from samantha.cli.common import (
    EXIT_BAD_INPUT,
    ConfigOption,
    JsonOption,
    bad_input,
    console,
    err_console,
    get_config,
    print_json,
)

app = typer.Typer(no_args_is_help=True, help="SRE playbooks: JSON Schema, lint, backtest on recorded telemetry.")


@app.command()
def schema() -> None:
    """Print the playbook JSON Schema (for editor autocompletion)."""
    from samantha.playbooks import playbook_schema

    print_json(playbook_schema())


@app.command()
def gates(as_json: bool = JsonOption) -> None:
    """List the gates a playbook can reference by name (built in, with provenance)."""
    from samantha.gates.registry import GateRegistry

    entries = GateRegistry.with_builtins().entries()
    if as_json:
        print_json({"gates": [e.model_dump(mode="json") for e in entries]})
        return
    for e in entries:
        g = e.gate
        typer.echo(f"{g.name:28} {g.kind:10} {g.description or ''}")


@app.command("lint")
def lint_cmd(files: list[Path] = typer.Argument(..., help="playbook YAML files"),
             config: Path | None = ConfigOption, as_json: bool = JsonOption) -> None:
    """Report every problem in every file at once (file:line:column reason). Exit 2 on any problem."""
    from samantha.playbooks import lint

    cfg = get_config(config)
    loaded, problems = lint(files, raw_horizon_s=cfg.store.raw_horizon_s, probes=cfg.twin.probe_percent > 0)
    if as_json:
        print_json({"files": len(loaded), "ok": not problems, "problems": [p.as_dict() for p in problems]})
    else:
        for p in problems:  # plain lines, never wrapped: editors and grep parse file:line:column
            typer.echo(str(p))
        typer.echo(f"{len(loaded)} file(s), {len(problems)} problem(s)")
    if problems:
        raise typer.Exit(EXIT_BAD_INPUT)


@app.command("test")
def test_cmd(files: list[Path] = typer.Argument(..., help="playbook YAML files"),
             replay: Path = typer.Option(..., "--replay", help="recorded telemetry: a DuckDB file or a Parquet dir"),
             step: float = typer.Option(1.0, "--step", min=0.05, help="evaluation interval, simulated seconds"),
             start: float | None = typer.Option(None, help="epoch s (default: start of the recording)"),
             end: float | None = typer.Option(None, help="epoch s (default: end of the recording)"),
             config: Path | None = ConfigOption, as_json: bool = JsonOption) -> None:
    """Backtest playbooks on recorded telemetry on a simulated clock; report every action that would fire."""
    from samantha.core.clock import SimClock
    from samantha.gates.replay import Recording, RecordingError
    from samantha.playbooks import backtest, lint

    cfg = get_config(config)
    loaded, problems = lint(files, raw_horizon_s=cfg.store.raw_horizon_s, probes=cfg.twin.probe_percent > 0)
    if problems:
        for p in problems:
            typer.echo(str(p), err=True)
        bad_input(f"{len(problems)} problem(s) in the playbooks; fix them first (samantha playbook lint)")
    try:
        rec = Recording(replay)
    except RecordingError as e:
        bad_input(str(e))
    with rec:
        span = rec.time_range()
        if span is None:
            bad_input(f"{replay}: the recording holds no telemetry")
        t0 = span[0] if start is None else start
        t1 = span[1] if end is None else end
        if t1 <= t0:
            bad_input(f"empty time range: start {t0} >= end {t1}")
        clock = SimClock(t0)
        pbs = [ld.playbook for ld in loaded if ld.playbook is not None]
        with Progress(TextColumn("[bold]backtest"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                      TimeElapsedColumn(), console=err_console, transient=as_json) as prog:
            task = prog.add_task("replay", total=t1 - t0)
            report = backtest(pbs, rec, start=t0, end=t1, step_s=step, clock=clock, name=str(replay),
                              progress=lambda now: prog.update(task, completed=now - t0))
    if as_json:
        print_json(report)
        return
    console.print(f"{report.evaluations} evaluations over {report.sim_seconds:.0f} simulated s in "
                  f"{report.wall_seconds:.2f} s ({report.speedup:.0f}x real time)")
    for f in report.firings:
        acts = ", ".join(a.action for a in f.actions)
        console.print(f"+{f.ts - t0:7.1f}s  {f.playbook} v{f.version} ({f.trigger}): {acts}", highlight=False)
        for v in f.evidence:
            console.print(f"           {v.gate}: {v.reason}", highlight=False, markup=False)
    for name, n in report.suppressed.items():
        console.print(f"{name}: {n} more firing(s) held back by cooldown / anti-flap")
    if not report.firings:
        console.print("no action would have fired")
