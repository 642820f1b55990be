"""`samantha hub ...`: the small hub (serve), and the operator tools that talk to any hub over HTTP."""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path
from typing import Any

import httpx
import typer

from samantha.cli.common import JsonOption, bad_input, console, failure, print_json

app = typer.Typer(no_args_is_help=True, help="The hub: fleet Reported State in Parquet, signed policy, decisions.")

HubOption = typer.Option("http://127.0.0.1:8490", "--hub", help="hub URL")
KeyOption = typer.Option(..., "--key", help="private key file (create one with `samantha keys new`)")


def _key(path: Path) -> Any:
    from samantha.core.signing import KeyPair, SignatureError

    try:
        return KeyPair.load(path)
    except SignatureError as e:
        bad_input(str(e))


def _call(method: str, url: str, **kw: Any) -> Any:
    try:
        r = httpx.request(method, url, timeout=30, **kw)
    except httpx.HTTPError as e:
        failure(f"hub unreachable at {url}: {type(e).__name__}")
    try:
        body = r.json()
    except ValueError:
        body = {"raw": r.text}
    if r.status_code >= 400 and r.status_code != 404:
        err = body.get("error", {}) if isinstance(body, dict) else {}
        (bad_input if r.status_code < 500 else failure)(f"HTTP {r.status_code}: {err.get('field')}: "
                                                        f"{err.get('reason', body)}")
    return body if r.status_code != 404 else None


@app.command()
def serve(root: Path = typer.Option(Path("hub"), help="storage root (Parquet, policy, index)"),
          host: str = typer.Option("127.0.0.1", help="bind address (loopback by default)"),
          port: int = typer.Option(8490, help="0 picks a free port")) -> None:
    """Run the hub in the foreground."""
    import asyncio

    from samantha.hub.__main__ import serve as serve_hub

    asyncio.run(serve_hub(str(root), host, port))


@app.command()
def publish(path: Path = typer.Argument(..., help="policy module body, YAML or JSON (unsigned)"),
            key: Path = KeyOption, hub: str = HubOption,
            valid_for: str = typer.Option("7d", help="expires_at = now + this, when the file has none"),
            force: bool = typer.Option(False, help="publish even if the hub holds a newer version"),
            out: Path | None = typer.Option(None, help="also write the signed module here"),
            as_json: bool = JsonOption) -> None:
    """Validate, sign (ed25519) and publish a policy module. Cubes verify it before applying."""
    from pydantic import ValidationError

    from samantha.core.validated_yaml import DocumentError, parse_yaml, problems_from_validation
    from samantha.gates.spec import parse_duration
    from samantha.uplink.policy_module import PolicyModule, sign_module

    try:
        body, marks = parse_yaml(path.read_text(), str(path))
    except OSError as e:
        bad_input(f"cannot read {path}: {e.strerror}")
    except DocumentError as e:
        bad_input(str(e))
    if not isinstance(body, dict):
        bad_input(f"{path}: a policy module is a mapping")
    now = time.time()
    body.setdefault("issued_at", now)
    try:
        body.setdefault("expires_at", now + parse_duration(valid_for))
    except ValueError as e:
        bad_input(f"--valid-for: {e}")
    try:
        PolicyModule.model_validate(body)
    except ValidationError as e:  # every problem, with its line and field
        bad_input(str(DocumentError(problems_from_validation(e, str(path), marks))))
    doc = sign_module(body, _key(key))
    current = _call("GET", f"{hub.rstrip('/')}/v1/policy")
    if current and isinstance(current.get("version"), int) and current["version"] >= doc["version"] and not force:
        bad_input(f"the hub holds version {current['version']}; publish a higher version (or --force)")
    if out is not None:
        out.write_text(json.dumps(doc, indent=1, sort_keys=True))
    res = _call("PUT", f"{hub.rstrip('/')}/v1/policy", json=doc)
    print_json(res) if as_json else console.print(f"published policy module v{res['version']} ({res['sha256'][:12]})")


def _operator_doc(kind: str, cube: str, operator: str, lifetime: str, reason: str, **extra: Any) -> dict[str, Any]:
    from samantha.gates.spec import parse_duration

    now = time.time()
    try:
        life = parse_duration(lifetime)
    except ValueError as e:
        bad_input(f"--valid-for: {e}")
    return {"kind": kind, "cube": cube, "operator": operator, "nonce": secrets.token_hex(12), "issued_at": now,
            "expires_at": now + life, "reason": reason, **extra}


@app.command()
def decide(request_id: str = typer.Argument(..., help="the approval request it answers"),
           cube: str = typer.Option(..., help="the Cube's id at the hub"),
           approve: bool = typer.Option(..., "--approve/--deny"), key: Path = KeyOption, hub: str = HubOption,
           operator: str = typer.Option(..., help="your name, as in the module's operator_keys"),
           valid_for: str = typer.Option("1h"), reason: str = typer.Option(""),
           proposal_key: str | None = typer.Option(None, help="the request's proposal key: the Cube then refuses "
                                                   "the decision for any other proposal"),
           as_json: bool = JsonOption) -> None:
    """Sign an approval decision and have the hub relay it to the Cube."""
    from samantha.uplink.operator_docs import DECISION_KIND, sign_operator_doc

    bind = {"proposal_key": proposal_key} if proposal_key else {}
    doc = sign_operator_doc(_operator_doc(DECISION_KIND, cube, operator, valid_for, reason, request_id=request_id,
                                          decision="approve" if approve else "deny", **bind), _key(key))
    res = _call("POST", f"{hub.rstrip('/')}/v1/cubes/{cube}/decisions", json=doc)
    print_json(res) if as_json else console.print(f"relayed as #{res['seq']}")


@app.command()
def override(cube: str = typer.Option(..., help="the Cube's id at the hub"), key: Path = KeyOption,
             hub: str = HubOption, operator: str = typer.Option(...),
             valid_for: str = typer.Option("4h", help="how long the Cube may leave safe mode"),
             reason: str = typer.Option(..., help="why (recorded in the Cube's audit log)"),
             out: Path | None = typer.Option(None, help="write the signed document here instead of relaying it"),
             as_json: bool = JsonOption) -> None:
    """Sign a safe-mode override (role `override`); relay it, or write it for `samantha uplink operator`."""
    from samantha.uplink.operator_docs import OVERRIDE_KIND, sign_operator_doc

    doc = sign_operator_doc(_operator_doc(OVERRIDE_KIND, cube, operator, valid_for, reason), _key(key))
    if out is not None:
        out.write_text(json.dumps(doc, indent=1))
        console.print(f"wrote {out}")
        return
    res = _call("POST", f"{hub.rstrip('/')}/v1/cubes/{cube}/decisions", json=doc)
    print_json(res) if as_json else console.print(f"relayed as #{res['seq']}")


@app.command()
def stats(hub: str = HubOption, as_json: bool = JsonOption) -> None:
    """Fleet records per kind, with duplicates (which must be 0)."""
    res = _call("GET", f"{hub.rstrip('/')}/v1/fleet/stats")
    print_json(res) if as_json else console.print(res)


@app.command()
def queue(kind: str = typer.Argument(..., help="findings | proposed_gates | approval_requests"),
          hub: str = HubOption, as_json: bool = JsonOption) -> None:
    """Edge findings, proposed gates and approval requests: queued for people, never applied fleet-wide."""
    res = _call("GET", f"{hub.rstrip('/')}/v1/fleet/queue/{kind}")
    print_json(res) if as_json else console.print(res)


@app.command()
def dora(data_dir: Path = typer.Option(..., "--data-dir", help="the hub's storage root (as given to `hub serve`)"),
         since: str = typer.Option("7d", "--since", help="start: 30m, 24h, 7d ago, ISO-8601 or epoch seconds"),
         until: str | None = typer.Option(None, "--until", help="end (default: now); same forms as --since"),
         as_json: bool = JsonOption) -> None:
    """Fleet DORA over the hub's Parquet: per cube and fleet-wide (read directly, no hub process needed)."""
    import duckdb

    from samantha.cli.reporting import parse_window, print_dora
    from samantha.reporting.dora import hub_dora

    s, u = parse_window(since, until)
    if not (data_dir / "reported").is_dir():
        bad_input(f"--data-dir: no hub data under {data_dir} (expected {data_dir / 'reported'})")
    try:
        out = hub_dora(data_dir, s, u)
    except (duckdb.Error, ValueError) as e:
        failure(f"cannot read the fleet's Parquet under {data_dir}: {e}")
    print_json(out) if as_json else print_dora(out)
