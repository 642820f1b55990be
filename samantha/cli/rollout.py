"""`samantha rollout start BUNDLE | status | abort`: progressive rollouts, through the daemon's API."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import typer

from samantha.cli.common import (
    EXIT_BAD_INPUT,
    ConfigOption,
    JsonOption,
    bad_input,
    console,
    failure,
    get_config,
    print_json,
)

app = typer.Typer(no_args_is_help=True, help="Progressive rollouts: shadow, 1/5/25/50/100 with gates, soak, flip.")


_HEADERS: dict[str, str] = {}  # the operator token (samantha/api/auth.py), set by _api


def _api(config: Path | None) -> str:
    from samantha.api.client import auth_headers

    cfg = get_config(config)
    _HEADERS.update(auth_headers(cfg))
    return f"http://{cfg.api.host}:{cfg.api.port}"


def _call(method: str, url: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    try:
        r = httpx.request(method, url, json=body, timeout=60, headers=_HEADERS)
    except httpx.HTTPError as e:
        failure(f"the daemon does not answer at {url} ({type(e).__name__}); start it with `samantha run`")
    doc = r.json()
    if r.status_code >= 400 and "error" in doc:
        err = doc["error"]
        msg = f"{err['code']}: {err['reason']}" + (f" (field {err['field']})" if err.get("field") else "")
        (bad_input if r.status_code in (400, 404, 413, 422) else failure)(msg)
    return doc


def _show(doc: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(doc)
        return
    from samantha.rollout.record import RolloutStatus
    from samantha.rollout.view import render

    console.print(render(RolloutStatus.model_validate(doc)))


@app.command()
def start(bundle: str = typer.Argument(..., help="bundle directory, or >= 8 hex digits of its id"),
          request_id: str | None = typer.Option(None, help="idempotency key (default: a new one)"),
          wait: bool = typer.Option(False, "--wait", help="follow the rollout until it ends"),
          config: Path | None = ConfigOption, as_json: bool = JsonOption) -> None:
    """Verify BUNDLE, load it into the standby slot and start rolling it out."""
    ref = str(Path(bundle).absolute()) if Path(bundle).is_dir() else bundle
    base = _api(config)
    doc = _call("POST", f"{base}/v1/rollout/start", {"bundle": ref, "request_id": request_id or f"cli-{uuid.uuid4().hex}"})
    if wait:
        doc = _follow(base, as_json)
    _show(doc, as_json)
    if doc["phase"] in ("aborted", "failed"):
        raise typer.Exit(1)


def _follow(base: str, quiet: bool, limit_s: float = 24 * 3600) -> dict[str, Any]:
    from rich.live import Live

    from samantha.rollout.record import RolloutStatus
    from samantha.rollout.view import render

    deadline = time.monotonic() + limit_s
    doc = _call("GET", f"{base}/v1/rollout/status")
    with Live(console=console, refresh_per_second=4, transient=quiet) as live:
        while time.monotonic() < deadline:
            doc = _call("GET", f"{base}/v1/rollout/status")
            if not quiet:
                live.update(render(RolloutStatus.model_validate(doc)))
            if doc["phase"] in ("idle", "promoted", "aborted", "failed"):
                break
            time.sleep(0.25)
    return doc


@app.command()
def status(watch: bool = typer.Option(False, "--watch", help="follow until the rollout ends"),
           config: Path | None = ConfigOption, as_json: bool = JsonOption) -> None:
    """The current (or last) rollout: phase, weight, gate verdicts, decisions with evidence."""
    base = _api(config)
    doc = _follow(base, as_json) if watch else _call("GET", f"{base}/v1/rollout/status")
    _show(doc, as_json)


@app.command()
def abort(reason: str = typer.Option(..., "--reason", help="why (recorded with the decision)"),
          config: Path | None = ConfigOption, as_json: bool = JsonOption) -> None:
    """Send all traffic back to the active slot and stop the rollout (no quarantine)."""
    _show(_call("POST", f"{_api(config)}/v1/rollout/abort", {"reason": reason}), as_json)


@app.command("lint")
def lint_cmd(files: list[Path] = typer.Argument(..., help="rollout policy YAML files"),
             as_json: bool = JsonOption) -> None:
    """Check rollout policies (schema, gate names, consistent margins): file:line:column reason. Exit 2 on any."""
    from samantha.gates.policy_lint import lint_policy_file

    problems = [pr for f in files for pr in lint_policy_file(f)[1]]
    if as_json:
        print_json({"files": len(files), "ok": not problems, "problems": [p.as_dict() for p in problems]})
    else:
        for p in problems:  # plain lines: editors and grep parse file:line:column
            typer.echo(str(p))
        typer.echo(f"{len(files)} file(s), {len(problems)} problem(s)")
    if problems:
        raise typer.Exit(EXIT_BAD_INPUT)
