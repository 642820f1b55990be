"""`samantha uplink ...`: the outbox, sync with the hub, the policy module, safe mode.

Through the daemon's API when it runs; otherwise on the DuckDB file directly (one writer).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from samantha.cli.common import ConfigOption, JsonOption, bad_input, console, failure, get_config, print_json
from samantha.core.config import SamanthaConfig

app = typer.Typer(no_args_is_help=True, help="Store-and-forward to the hub, the signed policy module, safe mode.")


def _daemon(cfg: SamanthaConfig) -> str | None:
    """The running daemon's URL if it answers, else None (then the CLI is the writer)."""
    from samantha.api.client import daemon_url, run_file

    if not run_file(cfg).exists() and not cfg.api.port:
        return None
    url = daemon_url(cfg)
    try:
        httpx.get(f"{url}/healthz", timeout=1.0).raise_for_status()
    except httpx.HTTPError:
        return None
    return url


def _call(cfg: SamanthaConfig, url: str, method: str, path: str, **kw: Any) -> Any:
    """One request to the running daemon, as the CLI's operator (its token): the daemon's JSON answer."""
    from samantha.api.client import auth_headers

    r = httpx.request(method, url + path, headers=auth_headers(cfg), **kw)
    if r.status_code in (401, 403):
        failure(f"the daemon refused {method} {path}: {r.text[:300]}")
    return r.json()


@contextlib.contextmanager
def _local(cfg: SamanthaConfig) -> Iterator[Any]:
    from samantha.uplink.local import local_service

    with contextlib.ExitStack() as stack:
        try:
            svc = stack.enter_context(local_service(cfg))
        except Exception as e:  # a locked store: another process owns it
            failure(f"cannot open {cfg.store_path}: {e}")
        yield svc


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except OSError as e:
        bad_input(f"cannot read {path}: {e.strerror}")
    except ValueError as e:
        bad_input(f"{path}: not JSON: {e}")


def _fmt_ts_age(s: float | None) -> str:
    if s is None:
        return "never"
    for unit, n in (("d", 86400), ("h", 3600), ("m", 60)):
        if abs(s) >= n:
            return f"{s / n:.1f}{unit}"
    return f"{s:.0f}s"


def render_status(st: dict[str, Any]) -> None:
    ob = st["outbox"]
    safe = st["safe_mode"]
    console.print(f"[bold]cube[/bold] {st['cube_id']}  hub {st['hub_url'] or '[dim]none configured[/dim]'}")
    console.print(f"last sync: {_fmt_ts_age(st['since_last_sync_s'])} ago" if st["since_last_sync_s"] is not None
                  else "last sync: never")
    if st.get("last_error"):
        console.print(f"[yellow]last error:[/yellow] {st['last_error']} ({st['consecutive_failures']} failures)")
    console.print(f"outbox: {ob['pending_batches']} batches, {ob['pending_records']} records, "
                  f"{ob['pending_bytes'] / 1e6:.2f} MB of {ob['budget_bytes'] / 1e6:.2f} MB; "
                  f"downsampled {ob['downsampled_batches']}, gap records {ob['gap_records']}")
    p = st["policy"]
    if p.get("installed"):
        console.print(f"policy module v{p['version']} ({p['fleet']}), age {_fmt_ts_age(p['age_s'])}, "
                      f"{'[red]expired[/red]' if p['expired'] else 'expires in ' + _fmt_ts_age(p['expires_in_s'])}")
    else:
        console.print("policy module: [dim]none installed (shipped defaults)[/dim]")
    console.print("[bold red]SAFE MODE[/bold red]: " + safe["reason"] if safe["safe"] else "mode: normal")
    for r in st.get("recalls") or []:
        console.print(f"recall applied: {r['bundle_id'][:16]} at {r['applied_at']:.0f}"
                      f"{' (was active: flipped to last-known-good)' if r['was_active'] else ''}")
    t = Table("drift SLO", "status", "reason")
    for d in st["drift"]:
        color = {"pass": "green", "fail": "red"}.get(d["status"], "yellow")
        t.add_row(d["gate"], f"[{color}]{d['status']}[/{color}]", d["reason"])
    console.print(t)


@app.command()
def status(config: Path | None = ConfigOption, as_json: bool = JsonOption) -> None:
    """Outbox, last sync, policy module, safe mode and the drift SLOs."""
    cfg = get_config(config)
    url = _daemon(cfg)
    if url:
        st = _call(cfg, url, "GET", "/v1/uplink/status", timeout=30)
    else:
        with _local(cfg) as svc:
            svc.tick(sync=False)
            st = svc.status()
    print_json(st) if as_json else render_status(st)


@app.command()
def sync(config: Path | None = ConfigOption, as_json: bool = JsonOption,
         max_seconds: float | None = typer.Option(None, help="stop after this long (resumable)")) -> None:
    """Upload everything pending now, in order, with a progress bar; pull policy and decisions."""
    cfg = get_config(config)
    if not cfg.uplink.hub_url:
        bad_input("uplink.hub_url is not configured")
    url = _daemon(cfg)
    if url:
        out = _call(cfg, url, "POST", "/v1/uplink/sync", params={"max_seconds": max_seconds} if max_seconds else None,
                    timeout=(max_seconds or 3600) + 30)
    else:
        with _local(cfg) as svc:
            if as_json:
                out = svc.force_sync(max_seconds=max_seconds)
            else:
                with Progress(TextColumn("[bold]catch-up"), BarColumn(), MofNCompleteColumn(),
                              TextColumn("{task.fields[kind]}"), TimeElapsedColumn(), console=console) as bar:
                    task = bar.add_task("sync", total=None, kind="")

                    def progress(done: int, total: int, b: dict[str, Any]) -> None:
                        bar.update(task, completed=done, total=total, kind=f"{b['kind']} seq {b['seq']}")

                    out = svc.force_sync(progress=progress, max_seconds=max_seconds)
    if as_json:
        print_json(out)
    else:
        s = out.get("sync") or {}
        console.print(f"sent {s.get('sent', 0)} batches ({s.get('bytes', 0) / 1e6:.2f} MB), "
                      f"{s.get('duplicates', 0)} already at the hub, {s.get('remaining', '?')} remaining; "
                      f"watermark {s.get('watermark')}")
        if out.get("policy"):
            console.print(f"policy: {out['policy']}")
    s = out.get("sync") or {}
    if not s.get("ok"):
        failure(s.get("error") or out.get("error") or "sync failed")


@app.command()
def offer(path: Path = typer.Argument(..., help="a signed policy module (JSON)"),
          config: Path | None = ConfigOption, as_json: bool = JsonOption) -> None:
    """Install a signed policy module from a file (offline provisioning). Refused modules exit 1 with the reason."""
    cfg = get_config(config)
    doc = _read_json(path)
    url = _daemon(cfg)
    if url:
        res = _call(cfg, url, "POST", "/v1/uplink/policy", json=doc, timeout=30)
    else:
        with _local(cfg) as svc:
            res = svc.offer_module(doc, source=f"file:{path}").as_dict()
            svc.tick(sync=False)
    print_json(res) if as_json else console.print(res)
    if res.get("status") == "refused":
        raise typer.Exit(1)


@app.command()
def operator(path: Path = typer.Argument(..., help="a signed safe-mode override or approval decision (JSON)"),
             config: Path | None = ConfigOption, as_json: bool = JsonOption) -> None:
    """Hand the Cube an operator document locally (on-site operator, no hub)."""
    cfg = get_config(config)
    doc = _read_json(path)
    url = _daemon(cfg)
    if url:
        res = _call(cfg, url, "POST", "/v1/uplink/operator", json=doc, timeout=30)
    else:
        with _local(cfg) as svc:
            c = svc.submit_operator_doc(doc, source=f"file:{path}")
            res = {"ok": c.ok, "reason": c.reason, "signer": c.signer, "safe_mode": svc.safe.safe}
    print_json(res) if as_json else console.print(res)
    if not res.get("ok"):
        raise typer.Exit(1)


@app.command()
def policy(config: Path | None = ConfigOption, as_json: bool = JsonOption) -> None:
    """The policy module in force."""
    cfg = get_config(config)
    url = _daemon(cfg)
    if url:
        info = _call(cfg, url, "GET", "/v1/uplink/policy", timeout=10)
    else:
        with _local(cfg) as svc:
            info = svc.policy.info(svc.clock.time())
    print_json(info) if as_json else console.print(info)
