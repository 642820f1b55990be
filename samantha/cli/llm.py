"""`samantha llm ...`: the local model (status, check)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import Progress
from rich.table import Table

from samantha.cli.common import ConfigOption, JsonOption, bad_input, console, failure, get_config, print_json
from samantha.core.validated_yaml import DocumentError

app = typer.Typer(no_args_is_help=True, help="The local LLM: model status and the triage check.")

ModelOption = typer.Option(None, "--model", "-m", help="GGUF file (overrides llm.model_path and $SAMANTHA_MODEL)")


def _engine(config_path: Path | None, model: Path | None, timeout_s: float | None = None):
    from samantha.llm.engine import LlmEngine

    config = get_config(config_path)
    update: dict = {}
    if model is not None:
        update["model_path"] = str(model.resolve())
    if timeout_s is not None:
        if timeout_s <= 0:
            bad_input("--timeout must be > 0")
        update["timeout_s"] = timeout_s
    if update:
        config = config.model_copy(update={"llm": config.llm.model_copy(update=update)})
    return LlmEngine.from_config(config)


@app.command()
def status(config: Path | None = ConfigOption, model: Path | None = ModelOption, json: bool = JsonOption) -> None:
    """Resolve and load the model; show which file, its sha256 and the load time."""
    with _engine(config, model) as engine:
        st = engine.start()
    if json:
        print_json(st)
    else:
        for k, v in st.model_dump().items():
            console.print(f"{k:>15}: {v}")
    if st.enabled and not st.available:
        raise typer.Exit(1)


@app.command()
def check(config: Path | None = ConfigOption, model: Path | None = ModelOption,
          fixtures: Path | None = typer.Option(None, "--fixtures", help="directory of triage fixtures (*.json)"),
          timeout: float | None = typer.Option(None, "--timeout", help="override llm.timeout_s (e.g. on a loaded machine)"),
          json: bool = JsonOption) -> None:
    """Run triage on the labelled incident fixtures; print speed, validity, injection and accuracy figures."""
    from samantha.llm.check import load_fixtures, run_check

    try:
        cases = load_fixtures(fixtures)
    except DocumentError as e:
        bad_input(f"bad fixture:\n{e}")
    if not cases:
        bad_input(f"no fixtures in {fixtures}")
    with _engine(config, model, timeout) as engine:
        if json:
            report = run_check(engine, cases)
        else:
            with Progress(console=console, transient=True) as bar:
                task = bar.add_task("triage", total=len(cases))
                report = run_check(engine, cases, progress=lambda fx, r: bar.advance(task))
    if json:
        print_json(report)
    else:
        table = Table(show_header=False)
        for k, v in report.model_dump().items():
            table.add_row(k, str(v))
        console.print(table)
    if report.error and report.outcomes.get("ok", 0) == 0:
        failure(report.error)
