"""`samantha bench ...`: benchmarks that print one JSON object."""

from __future__ import annotations

import typer

from samantha.cli.common import JsonOption, console, print_json

app = typer.Typer(no_args_is_help=True, help="Benchmarks (each prints one JSON object with --json).")


@app.command()
def judge(as_json: bool = JsonOption,
          quick: bool = typer.Option(False, "--quick", help="fewer rollouts and a smaller store, for tests"),
          seed: int = typer.Option(7, help="random seed (runs are reproducible)")) -> None:
    """A/A false aborts, detection rate and time per degradation, and 100-gate evaluation latency."""
    from samantha.gates.judge_bench import run_judge_bench

    result = run_judge_bench(quick=quick, seed=seed, progress=not as_json)
    if as_json:
        print_json(result)
    else:
        console.print_json(data=result)
