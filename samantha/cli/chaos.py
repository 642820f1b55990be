"""`samantha chaos ...`: validate templates locally; plan, run, inspect through the local API (one writer)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import typer
from rich.markup import escape

from samantha.cli.common import ConfigOption, JsonOption, bad_input, console, failure, get_config, print_json
from samantha.core.config import SamanthaConfig

app = typer.Typer(no_args_is_help=True, help="Chaos experiments: plan, pre-flight, run, findings.")


def api_url(config: SamanthaConfig) -> str:
    from samantha.api.client import daemon_url

    return (config.chaos.api_url or daemon_url(config)).rstrip("/")


def call(config: SamanthaConfig, method: str, path: str, *, timeout: float = 30.0, **kw: Any) -> Any:
    from samantha.api.client import auth_headers

    url = api_url(config) + path
    try:
        r = httpx.request(method, url, timeout=timeout, headers=auth_headers(config), **kw)
    except httpx.HTTPError as e:
        failure(f"Samantha's API is not reachable at {api_url(config)} ({type(e).__name__}); "
                "start `samantha run`")
    try:
        body = r.json()
    except ValueError:
        failure(f"{method} {path}: HTTP {r.status_code}: {r.text[:300]}")
    if r.status_code >= 400:
        err = body.get("error", {}) if isinstance(body, dict) else {}
        msg = f"{err.get('code', r.status_code)}: {err.get('reason', r.text[:300])}"
        if err.get("field"):
            msg += f" (field {err['field']})"
        for p in err.get("problems") or []:
            msg += f"\n  {p['source']}:{p['line']}:{p['column']}: {p['field']}: {p['reason']}"
        (bad_input if r.status_code in (400, 404, 422) else failure)(msg)
    return body


@app.command()
def validate(file: Path, as_json: bool = JsonOption) -> None:
    """Check an experiment template, or a native Chaos Toolkit experiment (chaoslib's own validation): every
    problem with file:line:column, field and reason."""
    from samantha.chaos.experiment import load_template
    from samantha.chaos.native_classify import is_native
    from samantha.core.validated_yaml import DocumentError

    try:
        native = is_native(file.read_text())
        if not native:
            t = load_template(file)
    except DocumentError as e:
        if as_json:
            print_json({"ok": False, "problems": [p.as_dict() for p in e.problems]})
            raise typer.Exit(2) from None
        bad_input(f"{file} is not a valid experiment:\n{e}")
    except OSError as e:
        bad_input(f"cannot read {file}: {e.strerror}")
    if native:
        _validate_native(file, as_json)
        return
    out = {"ok": True, "title": t.title, "kind": t.fault.kind, "target": t.target,  # type: ignore[attr-defined]
           "proposal_key": t.proposal().key}
    print_json(out) if as_json else console.print(f"[green]ok[/green] {file}: {t.title} ({out['kind']} on {t.target})")


def _validate_native(file: Path, as_json: bool) -> None:
    """Which roles its toxiproxy actions hit is the Cube's to say when it runs (`run`): here, the document only."""
    from samantha.chaos.native_classify import parse_native
    from samantha.core.validated_yaml import DocumentError

    try:
        doc = parse_native(file.read_text(), str(file))
    except DocumentError as e:
        if as_json:
            print_json({"ok": False, "problems": [p.as_dict() for p in e.problems]})
            raise typer.Exit(2) from None
        bad_input(escape(f"{file} is not a valid Chaos Toolkit experiment:\n{e}"))
    out = {"ok": True, "native": True, "title": doc.get("title"), "method": len(doc.get("method") or []),
           "rollbacks": len(doc.get("rollbacks") or [])}
    print_json(out) if as_json else console.print(
        f"[green]ok[/green] {escape(str(file))}: {escape(str(out['title']))} (native Chaos Toolkit experiment, "
        f"{out['method']} method steps, {out['rollbacks']} rollbacks)", highlight=False)


def _show_result(out: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(out)
        return
    console.print(f"outcome: [bold]{out.get('outcome')}[/bold]  experiment {out.get('experiment_id', '-')}")
    for r in (out.get("preflight") or {}).get("reasons", []):
        console.print(f"  [{'red' if r['severity'] == 'reject' else 'yellow'}]{r['severity']}[/] "
                      + escape(f"[{r['code']}] {r['message']}"), highlight=False)
    for f in out.get("findings") or []:
        console.print(f"  finding: {f['text']}", highlight=False)
    for g in out.get("learned_gates") or []:
        console.print(f"  new gate: {g['name']} (p99 <= {g['spec'].get('value')} ms, {g['spec'].get('slot')})")
    if out.get("approval"):
        aid = out["approval"]["id"]
        console.print(f"  waiting for an operator: samantha approvals approve {aid} --key OPERATOR.key")


@app.command()
def run(file: Path, config: Path | None = ConfigOption, as_json: bool = JsonOption) -> None:
    """Run a template, or a native Chaos Toolkit experiment (JSON or YAML: a method, a steady-state hypothesis,
    rollbacks), against the Cube: pre-flight decides whether it runs, waits for an operator, or is refused.

    Exit 0: it ran and the steady state held, or it waits for an operator's approval; 1: refused, failed or
    deviated; 2: a bad document (file:line, field and reason)."""
    from samantha.chaos.native_classify import is_native

    try:
        text = file.read_text()
    except OSError as e:
        bad_input(f"cannot read {file}: {e.strerror}")
    if not is_native(text):
        out = call(get_config(config), "POST", "/v1/chaos/run", json={"template": text, "source": str(file)},
                   timeout=900)
        _show_result(out, as_json)
        if out.get("outcome") == "rejected":
            raise typer.Exit(1)
        return
    from samantha.chaos.native_classify import parse_native
    from samantha.core.validated_yaml import DocumentError

    try:  # checked here first: a bad document needs no daemon to be told so
        parse_native(text, str(file))
    except DocumentError as e:
        if as_json:
            print_json({"ok": False, "problems": [p.as_dict() for p in e.problems]})
            raise typer.Exit(2) from None
        bad_input(escape(f"{file} is not a valid Chaos Toolkit experiment:\n{e}"))
    out = call(get_config(config), "POST", "/v1/chaos/experiments/native",
               json={"document": text, "source": str(file)}, timeout=900)
    _show_result(out, as_json)
    if not as_json:
        for a in (out.get("preflight") or {}).get("activities", []):
            console.print(escape(f"  {a['path']} {a['name']}: {a['role']} ({a['reason']})"), highlight=False)
        if out.get("left_on_proxy"):
            console.print(escape(f"  toxics still on the proxy: {out['left_on_proxy']}"), highlight=False)
    if out.get("outcome") not in ("completed", "escalated"):
        raise typer.Exit(1)


@app.command()
def export(file: Path, config: Path | None = ConfigOption, as_json: bool = JsonOption,
           out: Path | None = typer.Option(None, "--out", "-o", help="write the Chaos Toolkit document here")) -> None:
    """The exact Chaos Toolkit experiment `run` would start for a template on this Cube, with the pre-flight
    verdict it meets now; `chaos validate` and `chaos run` accept the document as it is."""
    cfg = get_config(config)
    try:
        text = file.read_text()
    except OSError as e:
        bad_input(f"cannot read {file}: {e.strerror}")
    res = call(cfg, "POST", "/v1/chaos/export", json={"template": text, "source": str(file)})
    if out is not None:
        out.write_text(json.dumps(res["experiment"], indent=2) + "\n")
    if as_json:
        print_json(res)
    elif out is None:
        print(json.dumps(res["experiment"], indent=2))
    else:
        console.print(f"wrote {out}: {res['experiment']['title']} (pre-flight now: {res['verdict']})")


@app.command()
def plan(config: Path | None = ConfigOption, as_json: bool = JsonOption,
         llm: bool = typer.Option(False, "--llm", help="add LLM proposals and ranking")) -> None:
    """Proposals from the dependency map, ranked, each with its pre-flight verdict and reasons."""
    out = call(get_config(config), "GET", "/v1/chaos/plan", params={"llm": llm}, timeout=120)
    if as_json:
        print_json(out)
        return
    from rich.table import Table

    t = Table("verdict", "proposal", "value-risk", "reasons")
    for p in out["proposals"]:
        pr = p["proposal"]
        t.add_row(p["verdict"], f"{pr['kind']} on {pr['target']} {pr['params']}", f"{pr['value'] - pr['risk']:.2f}",
                  escape("; ".join(f"[{r['code']}]" for r in p["reasons"])))
    console.print(t)
    console.print(out["counts"])


@app.command("run-once")
def run_once(config: Path | None = ConfigOption, as_json: bool = JsonOption) -> None:
    """Run the top-ranked sanctioned proposal."""
    _show_result(call(get_config(config), "POST", "/v1/chaos/run-once", timeout=900), as_json)


@app.command()
def experiments(config: Path | None = ConfigOption, as_json: bool = JsonOption) -> None:
    """Experiments run on this Cube, newest first."""
    out = call(get_config(config), "GET", "/v1/chaos/experiments")
    if as_json:
        print_json(out)
        return
    for e in out["experiments"]:
        console.print(f"{e['id']}  {e['state']:<9} {e['title']}  journal {e.get('journal_sha256') or '-'}",
                      highlight=False)


@app.command()
def findings(config: Path | None = ConfigOption, as_json: bool = JsonOption) -> None:
    """Findings of past runs."""
    out = call(get_config(config), "GET", "/v1/chaos/findings")
    if as_json:
        print_json(out)
        return
    for f in out["findings"]:
        console.print(f"{f['experiment_id']}  {f['text']}", highlight=False)


@app.command()
def selftest(config: Path | None = ConfigOption, as_json: bool = JsonOption) -> None:
    """Exercise each revert path once with a minimal fault (a tested revert is a pre-flight condition)."""
    out = call(get_config(config), "POST", "/v1/chaos/selftest", timeout=120)
    print_json(out) if as_json else console.print(out["results"])


@app.command()
def catalog(as_json: bool = JsonOption) -> None:
    """The fault catalog (the fault-kind registry) with each kind's blast-radius profile and parameter ranges."""
    from samantha.chaos.fault_kinds import catalog_table

    rows = catalog_table()
    if as_json:
        print_json({"faults": rows})
        return
    for r in rows:
        console.print(f"[bold]{r['kind']}[/bold] on {'/'.join(r['targets'])}: {r['summary']} revert: {r['revert']}",
                      highlight=False)


@app.command()
def rules(as_json: bool = JsonOption) -> None:
    """The safety kernel's rules: the policy rules every action passes and the pre-flight rules every
    experiment passes, each with its id and explanation."""
    from samantha.kernel.policy import rule_catalog as policy_rules
    from samantha.kernel.preflight import rule_catalog as preflight_rules

    out = {"policy": [{"id": r["id"], "description": r["doc"]} for r in policy_rules()],
           "preflight": [{"id": r["id"], "description": r["doc"]} for r in preflight_rules()]}
    if as_json:
        print_json(out)
        return
    from rich.table import Table

    for name, title in (("policy", "policy rules (every action)"), ("preflight", "pre-flight rules (every experiment)")):
        t = Table("id", "description", title=title, title_justify="left")
        for r in out[name]:
            t.add_row(r["id"], escape(r["description"]))
        console.print(t)
