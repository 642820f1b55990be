"""What every command shares: config loading, --json output, and exit codes (0 ok, 1 failure, 2 bad input)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import typer
from pydantic import BaseModel
from rich.console import Console

from samantha.core.config import SamanthaConfig, load_config
from samantha.core.validated_yaml import DocumentError

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2

console = Console()
err_console = Console(stderr=True)

ConfigOption = typer.Option(None, "--config", "-c", help="samantha.yaml (default: $SAMANTHA_CONFIG or ./samantha.yaml)")
JsonOption = typer.Option(False, "--json", help="print one JSON object instead of a rich view")


def bad_input(message: str) -> NoReturn:
    err_console.print(f"[red]error:[/red] {message}", highlight=False, markup=True)
    raise typer.Exit(EXIT_BAD_INPUT)


def failure(message: str) -> NoReturn:
    err_console.print(f"[red]failed:[/red] {message}", highlight=False)
    raise typer.Exit(EXIT_FAILURE)


def check_cube(cube: str) -> None:
    """`--cube` names a Cube a scenario or bench can run on (exit 2 otherwise)."""
    from samantha.twin.scenario import CUBES

    if cube not in CUBES:
        bad_input(f"--cube {cube!r}: one of {', '.join(CUBES)}")


def require_triton(cube: str) -> None:
    """A `--cube` of real Triton servers needs tritonserver here (exit 1 with the reason otherwise)."""
    from samantha.harness.triton_process import TritonUnavailable, find_triton

    try:
        find_triton()
    except TritonUnavailable as e:
        failure(f"--cube {cube}: Triton cannot run here: {e}")


def get_config(path: Path | None) -> SamanthaConfig:
    try:
        return load_config(path)
    except DocumentError as e:
        bad_input(f"bad config:\n{e}")


def _default(o: Any) -> Any:
    if isinstance(o, BaseModel):
        return o.model_dump(mode="json")
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, default=_default, indent=2, sort_keys=False) + "\n")
    sys.stdout.flush()


def emit_result(result: Any, as_json: bool) -> None:
    """One JSON object on stdout for --json, a highlighted view otherwise."""
    if as_json:
        print_json(result)
    else:
        console.print_json(data=result)
