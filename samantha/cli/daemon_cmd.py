"""`samantha run | status | incidents | actions`: the daemon, and the commands that read it through its API."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from samantha.cli.common import ConfigOption, JsonOption, bad_input, console, failure, get_config, print_json


def _client(config: Path | None):  # noqa: ANN202 - imported lazily to keep `samantha --help` fast
    from samantha.api.client import DaemonClient

    return DaemonClient.from_config(get_config(config))


def _call(fn):  # noqa: ANN001, ANN202
    from samantha.api.client import DaemonError, DaemonNotRunning

    try:
        return fn()
    except DaemonNotRunning as e:
        failure(str(e))
    except DaemonError as e:
        if 400 <= e.status < 500:
            bad_input(str(e))
        failure(str(e))


def run(config: Path | None = ConfigOption) -> None:
    """Run the daemon in the foreground (API, ingest, gates, steady-state graph); SIGTERM/Ctrl-C stop it."""
    from samantha.core.validated_yaml import DocumentError
    from samantha.daemon.daemon import run as run_daemon

    cfg = get_config(config)
    try:
        code = run_daemon(cfg)
    except DocumentError as e:
        bad_input(f"bad playbooks:\n{e}")
    except Exception as e:  # e.g. the store is locked by another daemon
        failure(f"{type(e).__name__}: {e}")
    raise typer.Exit(code)


def status(config: Path | None = ConfigOption, as_json: bool = JsonOption) -> None:
    """Slots, bundles, weights, safe mode, gate verdicts, open incidents, loop timing."""
    with _client(config) as c:
        st = _call(c.status)
    if as_json:
        print_json(st)
        return
    t = Table(title=f"samantha {st['version']} (pid {st['pid']}, up {st['uptime_s']:.0f}s)")
    for col in ("slot", "role", "bundle", "healthy", "weight"):
        t.add_column(col)
    for s in st.get("slots") or []:
        w = (st.get("weights") or {}).get(s["role"])
        t.add_row(s["name"], s["role"], f"{s.get('bundle_name')}@{s.get('bundle_version')} {str(s.get('bundle_id'))[:12]}",
                  "yes" if s["healthy"] else "[red]no[/red]", f"{w:g}%" if w is not None else "-")
    console.print(t)
    if st.get("cube_error"):
        console.print(f"[red]Cube unreachable:[/red] {st['cube_error']}")
    failing = st.get("failing") or []
    console.print(f"safe mode: {st.get('safe_mode')}  gates: {len(st.get('verdicts') or [])} evaluated, "
                  f"{'[red]' + ', '.join(failing) + '[/red]' if failing else 'none failing'}")
    console.print(f"open incidents: {len(st['open_incidents'])}  actions: {st['actions']}  "
                  f"cycle p50 {st['loop']['cycle_ms_p50']} ms, graph overhead p50 {st['loop']['graph_overhead_ms_p50']} ms")
    up = st.get("uplink")
    if up:
        sync = "never" if up["since_last_sync_s"] is None else f"{up['since_last_sync_s']:.0f}s ago"
        pol = "none" if up["policy_version"] is None else f"v{up['policy_version']} (expires in " \
              f"{up['policy_expires_in_s']:.0f}s)"
        console.print(f"uplink: last sync {sync}, outbox {up['pending_batches']} batches "
                      f"{up['pending_bytes'] / 1e6:.2f}/{up['budget_bytes'] / 1e6:.1f} MB, policy module {pol}"
                      + (f"  [bold red]SAFE MODE[/bold red]: {up['safe_mode_reason']}" if up["safe_mode"] else ""))
        left = up.get("bundle_expires_in_s")
        bundle = "unknown" if left is None else f"in {left / 3600:.1f} h" if left > 0 else \
            f"[bold red]{-left / 3600:.1f} h ago[/bold red]"
        colour = {"pass": "green", "fail": "red"}
        console.print(f"active bundle expires {bundle}; drift SLOs: " + (", ".join(
            f"{d['gate']} [{colour.get(d['status'], 'yellow')}]{d['status']}[/]" for d in up.get("drift") or [])
            or "not evaluated yet"))
        bad = [d["gate"] for d in up.get("drift") or [] if d["status"] == "fail"]
        if bad:
            console.print(f"[red]drift SLOs failing:[/red] {', '.join(bad)}")


def incidents(config: Path | None = ConfigOption, as_json: bool = JsonOption,
              state: str | None = typer.Option(None, "--status", help="open or closed"),
              limit: int = typer.Option(50, min=1, max=1000)) -> None:
    """Incidents, newest first."""
    with _client(config) as c:
        rows = _call(lambda: c.incidents(state, limit))
    if as_json:
        print_json({"incidents": rows})
        return
    t = Table(title="incidents", show_lines=True)
    for col in ("id", "status", "severity", "summary (from the evidence)", "cause"):
        t.add_column(col)
    for r in rows:
        advisory = (r.get("triage") or {}).get("advisory")
        text = (r.get("summary") or r["title"]) + (f"\n[dim]advisory (LLM, checked): {advisory}[/dim]" if advisory
                                                   else "")
        t.add_row(r["id"], r["status"], r["severity"], text, r.get("cause") or "")
    console.print(t)


def actions(config: Path | None = ConfigOption, as_json: bool = JsonOption,
            state: str | None = typer.Option(None, "--status", help="intent|done|verified|reverted|failed"),
            kind: str | None = typer.Option(None, "--kind"), limit: int = typer.Option(50, min=1, max=1000)) -> None:
    """Actions Samantha took (write-ahead ledger), newest first."""
    with _client(config) as c:
        rows = _call(lambda: c.actions(state, kind, None, limit))
    if as_json:
        print_json({"actions": rows})
        return
    t = Table(title="actions")
    for col in ("id", "kind", "status", "playbook", "reason", "incident"):
        t.add_column(col)
    for r in rows:
        t.add_row(r["id"], r["kind"], r["status"], r.get("playbook") or "", r["reason"][:50], r.get("incident_id") or "")
    console.print(t)


COMMANDS = {"run": run, "status": status, "incidents": incidents, "actions": actions}
