"""The `samantha` command. Thin: parse, call the modules, print (rich or --json).

Each command group lives in its own module under samantha/cli/ and is registered here.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import typer

from samantha import __version__
from samantha.cli.common import ConfigOption, get_config

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Samantha: an agentic SRE for disconnected edge AI appliances.")


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


@app.command()
def demo(config: Path | None = ConfigOption,
         fast: bool = typer.Option(False, "--fast", help="shorter acts, for tests")) -> None:
    """Run the main job on the embedded twin and tell the story live."""
    from samantha.harness.demo import run_demo

    raise typer.Exit(run_demo(get_config(config), fast=fast))


# (module under samantha.cli, Typer attribute, command name): one line per group.
_GROUPS = [
    ("config_cmd", "app", "config"),
    ("telemetry", "app", "telemetry"),
    ("proxy", "app", "proxy"),
    ("bundle", "app", "bundle"),
    ("bundle", "keys_app", "keys"),
    ("twin", "app", "twin"),
    ("cube", "app", "cube"),
    ("rollout", "app", "rollout"),
    ("playbook", "app", "playbook"),
    ("bench", "app", "bench"),
    ("audit", "app", "audit"),
    ("llm", "app", "llm"),
    ("auth", "app", "auth"),
    ("reporting", "report_app", "report"),
    ("reporting", "dora_app", "dora"),
    ("chaos", "app", "chaos"),
    ("approvals", "app", "approvals"),
    ("gates", "app", "gates"),
    ("uplink", "app", "uplink"),
    ("hub", "app", "hub"),
    ("tuf", "app", "tuf"),
]


def _register(daemon_only: bool = False) -> None:
    from samantha.cli.daemon_cmd import COMMANDS

    for name, fn in COMMANDS.items():
        app.command(name)(fn)
    if daemon_only:
        return
    for module, attr, name in _GROUPS:
        app.add_typer(getattr(importlib.import_module(f"samantha.cli.{module}"), attr), name=name)


# `samantha run` is the long-lived daemon: it needs none of the other groups (about 12 MB of USS)
_register(daemon_only=sys.argv[1:2] == ["run"] and Path(sys.argv[0]).name in ("samantha", "__main__.py"))


def main() -> None:
    app()
