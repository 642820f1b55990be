"""`samantha audit ...`: check the signed, hash-chained decision log."""

from __future__ import annotations

from pathlib import Path

import duckdb
import typer

from samantha.cli.common import ConfigOption, JsonOption, bad_input, console, get_config, print_json
from samantha.core.audit import DuckDBAuditStore, JsonlAuditStore, verify_store
from samantha.core.signing import PublicKey, SignatureError

app = typer.Typer(no_args_is_help=True, help="The signed, hash-chained decision log.")


def _load_keys(paths: list[Path]) -> dict[str, PublicKey]:
    keys = {}
    for p in paths:
        try:
            k = PublicKey.from_b64(p.read_text().strip())
        except OSError as e:
            bad_input(f"cannot read public key {p}: {e.strerror}")
        except SignatureError as e:
            bad_input(f"{p}: {e}")
        keys[k.key_id] = k
    return keys


@app.command("verify")
def verify_cmd(config: Path | None = ConfigOption, json_out: bool = JsonOption,
               db: Path | None = typer.Option(None, "--db", help="DuckDB file (default: the configured store)"),
               jsonl: Path | None = typer.Option(None, "--jsonl", help="a JSONL audit log (+ <file>.head)"),
               key: list[Path] = typer.Option([], "--key", help="trusted public key file; repeatable "
                                                             "(default: <cube_key>.pub)")) -> None:
    """Check every record's hash, chain link and signature, and the signed head.

    Exits 0 when intact, 1 naming the first bad record when tampered, 2 on bad input.
    """
    cfg = get_config(config)
    if db and jsonl:
        bad_input("give --db or --jsonl, not both")
    trusted = _load_keys(key or [Path(f"{cfg.cube_key_path}.pub")])
    if jsonl is not None:
        if not jsonl.exists():
            bad_input(f"no such audit log: {jsonl}")
        source, report = str(jsonl), verify_store(JsonlAuditStore(jsonl), trusted)
    else:
        path = db or cfg.store_path
        if not path.exists():
            bad_input(f"no such database: {path}")
        try:
            conn = duckdb.connect(str(path), read_only=True)
        except duckdb.Error as e:
            bad_input(f"cannot open {path} read-only ({e}); while the daemon runs, verify a copy of the file")
        try:
            source, report = str(path), verify_store(DuckDBAuditStore(conn, create=False), trusted)
        finally:
            conn.close()
    if json_out:
        print_json({"source": source, **report.as_dict()})
    elif report.ok:
        head = f", signed head at seq {report.head_seq}" if report.head_seq is not None else ""
        console.print(f"[green]intact[/green]: {report.count} records{head} ({source})")
    else:
        console.print(f"[red]TAMPERED[/red]: {report.reason} ({source})", highlight=False)
    raise typer.Exit(0 if report.ok else 1)
