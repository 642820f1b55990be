"""`samantha approvals list|show|approve|deny`: the escalated-experiment queue, through the local API.

approve/deny sign a decision document locally with the operator's key (never sent) and
post it; the Cube checks signature, role, expiry and replay before the chaos thread resumes.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer

from samantha.cli.chaos import call
from samantha.cli.common import ConfigOption, JsonOption, bad_input, console, get_config, print_json

app = typer.Typer(no_args_is_help=True, help="Escalated chaos experiments waiting for an operator's signed decision.")
KeyOption = typer.Option(..., "--key", "-k", help="the operator's private key file (samantha keys new-operator)")


@app.command("list")
def list_(config: Path | None = ConfigOption, as_json: bool = JsonOption,
          status: str | None = typer.Option(None, help="pending|approved|denied|expired|executed|refused")) -> None:
    """Queue items, newest first."""
    out = call(get_config(config), "GET", "/v1/chaos/approvals", params={"status": status} if status else None)
    if as_json:
        print_json(out)
        return
    for a in out["approvals"]:
        p = a["proposal"]
        codes = ", ".join(r["code"] for r in a["preflight"]["reasons"])
        console.print(f"{a['id']}  {a['status']:<8} {p['kind']} on {p['target']}  [{codes}]", highlight=False,
                      markup=False)


@app.command()
def show(approval_id: str, config: Path | None = ConfigOption, as_json: bool = JsonOption) -> None:
    """One item with its full context: proposal, reasons, health, blast radius, revert plan, LLM rationale."""
    out = call(get_config(config), "GET", f"/v1/chaos/approvals/{approval_id}")
    if as_json:
        print_json(out)
        return
    p = out["proposal"]
    console.print(f"[bold]{out['id']}[/bold] {out['status']}: {p['kind']} on {p['target']} {p['params']}",
                  highlight=False)
    for r in out["preflight"]["reasons"]:
        console.print(f"  {r['severity']} [{r['code']}] {r['message']}", highlight=False, markup=False)
    console.print(f"  blast radius: {out.get('blast')}", highlight=False)
    console.print(f"  revert plan: {out.get('revert_plan')}", highlight=False)
    if out.get("llm_rationale"):
        console.print(f"  LLM rationale (advice only): {out['llm_rationale']}", highlight=False)
    console.print(f"  expires at {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(out['expires_at']))}")


def _decide(verb: str, approval_id: str, key_path: Path, operator: str, reason: str, ttl_s: float,
            config: Path | None, as_json: bool) -> None:
    from samantha.chaos.approvals import make_decision
    from samantha.core.signing import KeyPair, SignatureError

    cfg = get_config(config)
    try:
        key = KeyPair.load(key_path)
    except SignatureError as e:
        bad_input(str(e))
    item = call(cfg, "GET", f"/v1/chaos/approvals/{approval_id}")
    doc = make_decision(approval_id, verb, item["proposal"]["key"], key, operator=operator, now=time.time(),
                        ttl_s=ttl_s, reason=reason)
    out: dict[str, Any] = call(cfg, "POST", f"/v1/chaos/approvals/{approval_id}/{verb}", json=doc, timeout=900)
    if as_json:
        print_json(out)
        return
    res = out.get("result") or {}
    console.print(f"{approval_id}: {out['approval']['status']}; outcome {res.get('outcome')}", highlight=False)
    for f in res.get("findings") or []:
        console.print(f"  finding: {f['text']}", highlight=False)


@app.command()
def approve(approval_id: str, key: Path = KeyOption, operator: str = typer.Option("operator", help="your name"),
            reason: str = typer.Option("", help="why"), ttl_s: float = typer.Option(300, help="decision validity"),
            config: Path | None = ConfigOption, as_json: bool = JsonOption) -> None:
    """Sign and send an approval; the experiment then runs if pre-flight still allows it."""
    _decide("approve", approval_id, key, operator, reason, ttl_s, config, as_json)


@app.command()
def deny(approval_id: str, key: Path = KeyOption, operator: str = typer.Option("operator", help="your name"),
         reason: str = typer.Option("", help="why"), ttl_s: float = typer.Option(300, help="decision validity"),
         config: Path | None = ConfigOption, as_json: bool = JsonOption) -> None:
    """Sign and send a denial."""
    _decide("deny", approval_id, key, operator, reason, ttl_s, config, as_json)
