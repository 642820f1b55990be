"""`samantha auth add | list | whoami`: the trusted operators who may use the API and the web console."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from samantha.cli.common import ConfigOption, JsonOption, bad_input, console, get_config, print_json

app = typer.Typer(no_args_is_help=True, help="Operators: tokens bound to a name and a role (viewer < approver < admin).")


@app.command("add")
def add(name: str = typer.Argument(..., help="operator name (letters, digits, . _ @ -)"),
        role: str = typer.Option(..., "--role", help="viewer, approver or admin"),
        public_key: Path | None = typer.Option(None, "--public-key", help="the operator's ed25519 public key file "
                                               "(base64), for decisions they sign with their own key"),
        config: Path | None = ConfigOption, as_json: bool = JsonOption) -> None:
    """Add (or re-issue) an operator and print their new token once; only its sha256 is stored."""
    from pydantic import ValidationError

    from samantha.core.operators import add_operator
    from samantha.core.validated_yaml import DocumentError

    cfg = get_config(config)
    if role not in ("viewer", "approver", "admin"):
        bad_input(f"--role: {role!r} is not one of viewer, approver, admin")
    key = None
    if public_key is not None:
        try:
            key = public_key.read_text().strip()
        except OSError as e:
            bad_input(f"--public-key: {e}")
    path = cfg.resolve(cfg.api.operators_file)
    try:
        token = add_operator(path, name, role, key)  # type: ignore[arg-type]
    except (ValidationError, DocumentError) as e:
        bad_input(f"{path}: {e}")
    if as_json:
        print_json({"name": name, "role": role, "token": token, "file": str(path)})
    else:
        console.print(f"operator [bold]{name}[/bold] ({role}) in {path}\ntoken (shown once): {token}", highlight=False)


@app.command("list")
def list_cmd(config: Path | None = ConfigOption, as_json: bool = JsonOption) -> None:
    """Operators, their roles, and whether they have a token and a signing key."""
    from samantha.core.operators import load_operators
    from samantha.core.validated_yaml import DocumentError

    cfg = get_config(config)
    path = cfg.resolve(cfg.api.operators_file)
    try:
        ops = load_operators(path).operators
    except DocumentError as e:
        bad_input(str(e))
    rows = [{"name": o.name, "role": o.role, "token": o.token_sha256 is not None, "public_key": o.public_key is not None}
            for o in ops]
    if as_json:
        print_json({"file": str(path), "operators": rows})
        return
    t = Table(title=str(path))
    for c in ("name", "role", "token", "signing key"):
        t.add_column(c)
    for r in rows:
        t.add_row(r["name"], r["role"], "yes" if r["token"] else "-", "yes" if r["public_key"] else "-")
    console.print(t)
