"""Demo act: what happened, for humans. The HTML report (timelines, actions, rollouts, DORA) over the
records the earlier acts left, written to one self-contained file."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

TITLE = "Report: incidents, rollouts and DORA in one self-contained HTML file"


def _stores(workdir: Path, since: float, until: float) -> list[tuple[int, Path]]:
    """Stores the earlier acts left, ranked by how much there is to report (incidents + rollouts) in
    [since, until]: acts on a simulated clock record at other times and would make an empty report."""
    from samantha.reporting.records_access import open_reader, table_exists

    out = []
    for db in sorted(workdir.rglob("*.duckdb")):
        try:
            with open_reader(db) as read:
                n = sum(read(f"SELECT count(DISTINCT {key}) FROM {t} WHERE {ts} BETWEEN ? AND ?", [since, until]).column(0)[0].as_py()
                        for t, key, ts in (("incidents", "id", "opened_ts"), ("rollouts", "rollout_id", "ts"))
                        if table_exists(read, t))
        except Exception:  # a store another act still holds, or not Samantha's: skip it
            continue
        out.append((n, db))
    return sorted(out, key=lambda x: -x[0])


def run(ctx: Any) -> None:
    from samantha.reporting.records_access import open_reader
    from samantha.reporting.report import fmt_secs, write_report

    con = ctx.console
    now = time.time()
    stores = _stores(ctx.workdir, now - 86400, now)
    if not stores:
        raise RuntimeError(f"no Samantha store under {ctx.workdir}: the earlier acts recorded nothing")
    n, db = stores[0]
    con.print(f"reading {db} ({n} incidents + rollouts recorded by the earlier acts), read-only")
    path = ctx.workdir / "report.html"
    with open_reader(db) as read:
        out = write_report(read, now - 86400, now, path)
    d = out["dora"]
    rate = d["change_failure_rate"]["rate"]
    con.print(f"  incidents {out['incidents']}, rollouts {out['rollouts']}; MTTR p50 {fmt_secs(d['mttr']['p50_s'])} "
              f"over {d['mttr']['n']} recoveries; change failure rate {'-' if rate is None else f'{100 * rate:.0f}%'}")
    con.print(f"[bold green]report written:[/bold green] {path.resolve()} ({out['bytes'] / 1024:.0f} KiB, "
              "plots embedded, opens offline)")
    ctx.facts["report"] = str(path.resolve())
