"""`samantha telemetry ...` (filled in by the telemetry store work)."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help="The DuckDB telemetry store: bench, export, inspect.")
