"""`samantha gates list`: every gate and where it came from (built in, playbook, learned from a chaos run)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import typer

from samantha.api.client import auth_headers
from samantha.cli.chaos import api_url
from samantha.cli.common import ConfigOption, JsonOption, console, get_config, print_json

app = typer.Typer(no_args_is_help=True, help="Verification gates.")


def _local(config: Any) -> list[dict[str, Any]]:
    """Without a running daemon: the built-ins plus the learned gates in the chaos state file."""
    from samantha.chaos.records import ChaosRecords
    from samantha.gates.registry import GateRegistry

    reg = GateRegistry.with_builtins()
    db = config.resolve(config.chaos.db)
    if db.exists():
        rec = ChaosRecords(db)
        try:
            for g in rec.learned_gates():
                reg.add(g.gate, g.provenance, replace=True)
        finally:
            rec.close()
    return [{"name": e.gate.name, "kind": e.gate.kind, "description": e.gate.description,
             "provenance": e.provenance.model_dump(mode="json")} for e in reg.entries()]


@app.command("list")
def list_(config: Path | None = ConfigOption, as_json: bool = JsonOption) -> None:
    """Gates with their provenance (source; for learned gates: experiment, journal hash, version)."""
    cfg = get_config(config)
    try:
        gates = httpx.get(api_url(cfg) + "/v1/chaos/gates", headers=auth_headers(cfg), timeout=5).json()["gates"]
        source = "api"
    except (httpx.HTTPError, ValueError, KeyError):
        gates, source = _local(cfg), "local"
    if as_json:
        print_json({"gates": gates, "from": source})
        return
    for g in gates:
        p = g["provenance"]
        where = p["source"]
        if where == "learned":
            where += f" from {p['experiment_id']} (journal {p['journal_sha256'][:12]}, v{p['version']})"
        elif p.get("playbook"):
            where += f" {p['playbook']}"
        console.print(f"{g['name']:<34} {g['kind']:<10} {where}", highlight=False)
