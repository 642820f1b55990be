"""`samantha report` and `samantha dora`: what happened on this Cube, for humans and for DORA.

Both read the daemon's records through its API while it runs, else the store read-only.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer

from samantha.cli.common import ConfigOption, JsonOption, bad_input, console, failure, get_config, print_json

report_app = typer.Typer(invoke_without_command=True, no_args_is_help=False)
dora_app = typer.Typer(invoke_without_command=True, no_args_is_help=False)

SinceOption = typer.Option("7d", "--since", help="start: 30m, 24h, 7d ago, ISO-8601 or epoch seconds")
UntilOption = typer.Option(None, "--until", help="end (default: now); same forms as --since")


def parse_window(since: str, until: str | None) -> tuple[float, float]:
    from samantha.reporting.records_access import parse_when

    now = time.time()
    try:
        s = parse_when(since, now)
    except ValueError as e:
        bad_input(f"--since: {e}")
    try:
        u = parse_when(until, now) if until else now
    except ValueError as e:
        bad_input(f"--until: {e}")
    if u <= s:
        bad_input(f"--until ({u:.0f}) must be after --since ({s:.0f})")
    return s, u


def _via_daemon(cfg, path: str, **params):  # noqa: ANN001, ANN003, ANN202
    from samantha.api.client import DaemonClient, DaemonError, DaemonNotRunning

    with DaemonClient.from_config(cfg, timeout=120) as c:
        try:
            return c.get_raw(path, **params)
        except DaemonNotRunning as e:
            failure(f"the store is locked but the daemon does not answer: {e}")
        except DaemonError as e:
            (bad_input if 400 <= e.status < 500 else failure)(str(e))


@report_app.callback()
def report(config: Path | None = ConfigOption, since: str = SinceOption, until: str | None = UntilOption,
           html: Path = typer.Option(..., "--html", help="write the self-contained HTML report here"),
           as_json: bool = JsonOption) -> None:
    """Incidents with timelines and actions, rollouts step by step, chaos, approvals, drift SLOs, DORA."""
    from samantha.reporting.records_access import LockedByDaemon, open_reader
    from samantha.reporting.report import write_report

    cfg = get_config(config)
    s, u = parse_window(since, until)
    if not cfg.store_path.exists():
        bad_input(f"no store at {cfg.store_path}: nothing has been recorded yet")
    try:
        with open_reader(cfg.store_path) as read:
            out = write_report(read, s, u, html)
    except LockedByDaemon:
        body = _via_daemon(cfg, "/v1/report.html", since=s, until=u)
        html.parent.mkdir(parents=True, exist_ok=True)
        html.write_bytes(body)
        out = {"path": str(html), "bytes": len(body), "via": "daemon"}
    if as_json:
        print_json({k: v for k, v in out.items() if k != "dora"})
    else:
        console.print(f"report written: [bold]{out['path']}[/bold] ({out['bytes'] / 1024:.0f} KiB)")


@dora_app.callback()
def dora(config: Path | None = ConfigOption, since: str = SinceOption, until: str | None = UntilOption,
         as_json: bool = JsonOption,
         fleet_rollouts: str | None = typer.Option(None, "--fleet-rollouts", help="hub: Parquet glob of rollout "
                                                   "facts (cube, rollout_id, bundle_id, bundle_created_at, "
                                                   "started_at, ended_at, phase)"),
         fleet_recoveries: str | None = typer.Option(None, "--fleet-recoveries", help="hub: Parquet glob of "
                                                     "recovery facts (cube, source, ref, onset_ts, mitigated_ts)")
         ) -> None:
    """Deployment frequency, lead time, change failure rate and MTTR from this Cube's records (or a fleet's)."""
    import json

    from samantha.reporting.dora import fleet_dora, local_dora
    from samantha.reporting.records_access import LockedByDaemon, open_reader

    cfg = get_config(config)
    s, u = parse_window(since, until)
    if fleet_rollouts:
        out = fleet_dora(fleet_rollouts, fleet_recoveries, s, u)
    else:
        if not cfg.store_path.exists():
            bad_input(f"no store at {cfg.store_path}: nothing has been recorded yet")
        try:
            with open_reader(cfg.store_path) as read:
                out = local_dora(read, s, u)
        except LockedByDaemon:
            out = json.loads(_via_daemon(cfg, "/v1/dora", since=s, until=u))
    print_json(out) if as_json else print_dora(out)


def print_dora(out: dict) -> None:
    from samantha.reporting.report import fmt_secs

    df, lt, cfr, mttr = (out["deployment_frequency"], out["lead_time"], out["change_failure_rate"], out["mttr"])
    console.print(f"[bold]DORA ({out['scope']})[/bold] over {out['window']['days']:.2f} days")
    console.print(f"  deployment frequency  {df['per_day']:.3g}/day ({df['bundles_promoted']} bundles promoted)")
    console.print(f"  lead time             p50 {fmt_secs(lt['p50_s'])}, p95 {fmt_secs(lt['p95_s'])} "
                  f"(on the Cube p50 {fmt_secs(lt['on_cube']['p50_s'])}; disconnected p50 "
                  f"{fmt_secs(lt['disconnected']['p50_s'])})")
    rate = "-" if cfr["rate"] is None else f"{100 * cfr['rate']:.0f}%"
    console.print(f"  change failure rate   {rate} ({cfr['failed']}/{cfr['total']})")
    console.print(f"  MTTR                  p50 {fmt_secs(mttr['p50_s'])}, p95 {fmt_secs(mttr['p95_s'])} "
                  f"({mttr['n']} recoveries)")
    for cube, c in (out.get("per_cube") or {}).items():
        rate = "-" if c["change_failure_rate"]["rate"] is None else f"{100 * c['change_failure_rate']['rate']:.0f}%"
        console.print(f"  {cube}: {c['deployment_frequency']['per_day']:.3g}/day, lead time p50 "
                      f"{fmt_secs(c['lead_time']['p50_s'])}, failure rate {rate}, MTTR p50 "
                      f"{fmt_secs(c['mttr']['p50_s'])}")
