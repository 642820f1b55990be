"""`samantha config show|check|schema`."""

from __future__ import annotations

from pathlib import Path

import typer

from samantha.cli.common import ConfigOption, JsonOption, console, get_config, print_json
from samantha.core.config import SamanthaConfig

app = typer.Typer(no_args_is_help=True, help="Inspect and check samantha.yaml.")


@app.command()
def show(config: Path | None = ConfigOption, as_json: bool = JsonOption) -> None:
    """Print the effective configuration (defaults filled in)."""
    cfg = get_config(config)
    if as_json:
        print_json(cfg.model_dump(mode="json"))
    else:
        console.print_json(cfg.model_dump_json())


@app.command()
def check(config: Path | None = ConfigOption) -> None:
    """Validate the configuration; exit 2 naming the field and reason when it is bad."""
    get_config(config)
    console.print("config ok")


@app.command()
def schema() -> None:
    """JSON Schema for samantha.yaml, for editor autocompletion."""
    print_json(SamanthaConfig.model_json_schema())
