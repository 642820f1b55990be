"""`samantha report`: one self-contained HTML file (inline CSS, plots as PNG data URIs).

Sections: DORA, incidents with their timelines and actions, rollouts with step-by-step gate
results, chaos experiments and findings, approvals, drift SLOs. Tables another subsystem
has not created yet are reported as absent, never invented. `read(sql, params)` returns
an Arrow table: the daemon's store, or a read-only connection when the daemon is down.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from samantha import __version__
from samantha.reporting import timeline
from samantha.reporting.dora import local_dora
from samantha.reporting.incident_summary import summarize
from samantha.reporting.records_access import table_exists as _table_exists

MAX_INCIDENT_PLOTS = 20
# (section title, table, time column) of records other subsystems keep; shown when present
OPTIONAL_TABLES = [
    ("Chaos experiments", "experiments", ("created_ts", "ts", "started_at")),
    ("Findings", "findings", ("created_ts", "ts")),
    ("Approvals", "approvals", ("created_ts", "ts", "requested_at")),
    ("Drift SLOs", "drift_slos", ("ts", "updated_ts")),
]


def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                      autoescape=select_autoescape(["html", "j2"]))
    env.filters["ts"] = fmt_ts
    env.filters["secs"] = fmt_secs
    return env


def fmt_ts(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(float(ts), UTC).strftime("%Y-%m-%d %H:%M:%S")


def fmt_secs(s: float | None) -> str:
    if s is None:
        return "-"
    s = float(s)
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 120:
        return f"{s:.1f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def _cols(read: Any, table: str) -> list[str]:
    return [r["column_name"] for r in read("SELECT column_name FROM information_schema.columns WHERE table_name = ? "
                                           "ORDER BY ordinal_position", [table]).to_pylist()]


def _generic(read: Any, table: str, ts_cols: tuple[str, ...], since: float, until: float) -> dict[str, Any] | None:
    if not _table_exists(read, table):
        return None
    cols = _cols(read, table)
    ts = next((c for c in ts_cols if c in cols), None)
    where, params = ("", []) if ts is None else (f" WHERE {ts} >= ? AND {ts} <= ? ORDER BY {ts}", [since, until])
    rows = read(f'SELECT * FROM "{table}"{where} LIMIT 500', params).to_pylist()
    return {"columns": cols, "rows": [[_cell(r[c]) for c in cols] for r in rows], "ts_col": ts}


def _cell(v: Any) -> str:
    if isinstance(v, float) and v > 1e9:
        return fmt_ts(v)
    s = v if isinstance(v, str) else json.dumps(v, default=str)
    return s if len(s) <= 300 else s[:297] + "..."


def _rollouts(read: Any, since: float, until: float) -> list[dict[str, Any]]:
    if not _table_exists(read, "rollouts"):
        return []
    t = read("SELECT doc FROM (SELECT doc, ts, row_number() OVER (PARTITION BY rollout_id ORDER BY rev DESC) AS n "
             "FROM rollouts) WHERE n = 1 AND ts >= ? AND ts <= ? ORDER BY ts", [since, until])
    out = []
    for raw in t.column(0).to_pylist():
        doc = json.loads(raw) if isinstance(raw, str) else raw
        steps = []
        for v in doc.get("step_verdicts") or []:
            steps.append({"step": "shadow" if v["step"] == "shadow" else f"{int(v['step']) + 1}", "weight": v["weight"],
                          "status": v["status"], "reason": v["reason"], "ts": v["ts"],
                          "samples": f"{v['canary_samples']}/{v['min_samples']}",
                          "gates": [{"gate": g["gate"], "status": g["status"], "reason": g["reason"]}
                                    for g in v.get("verdicts") or []]})
        out.append({**{k: doc.get(k) for k in ("id", "bundle_label", "bundle_id", "phase", "reason", "started_at",
                                              "ended_at", "quarantined", "snapped")},
                    "steps": steps, "decisions": doc.get("decisions") or []})
    return out


def _ledger_rows(read: Any, incident_id: str) -> list[dict[str, Any]]:
    rows = read("SELECT id, kind, status, created_ts, done_ts, verified_ts, proposed, result FROM actions "
                "WHERE incident_id = ? ORDER BY created_ts", [incident_id]).to_pylist()
    for a in rows:
        for k in ("proposed", "result"):
            a[k] = json.loads(a[k]) if isinstance(a[k], str) else a[k]
    return rows


def _incidents(read: Any, since: float, until: float) -> list[dict[str, Any]]:
    if not _table_exists(read, "incidents"):
        return []
    rows = read("SELECT id, key, title, severity, status, opened_ts, closed_ts, updated_ts, cause, summary, gates, "
                "playbooks, evidence, refusals, triage FROM incidents WHERE opened_ts >= ? AND opened_ts <= ? "
                "ORDER BY opened_ts", [since, until]).to_pylist()
    have_actions = _table_exists(read, "actions")
    for i, r in enumerate(rows):
        for k in ("gates", "playbooks", "evidence", "refusals", "triage"):
            r[k] = json.loads(r[k]) if isinstance(r[k], str) else r[k]
        r["actions"] = timeline.incident_actions(read, r["id"]) if have_actions else []
        ledger = _ledger_rows(read, r["id"]) if have_actions else []
        # the headline is re-derived from the evidence here, so a report is true whatever wrote the row
        r["summary"] = summarize({**r, "actions": [a["id"] for a in ledger]}, ledger).text
        r["advisory"] = (r.get("triage") or {}).get("advisory")
        if i < MAX_INCIDENT_PLOTS:
            t0, t1 = timeline.incident_window(r, r["actions"])
            fig = timeline.figure(timeline.request_series(read, t0, t1), r["actions"], f"{r['title']} ({r['id']})",
                                  onset=r["opened_ts"])
            r["plot"] = timeline.png_data_uri(fig)
    return rows


def build(read: Any, since: float, until: float, *, cube: str = "") -> dict[str, Any]:
    """Everything the report shows, as plain data (also what `--json` callers would want)."""
    return {
        "generated_at": time.time(), "version": __version__, "cube": cube, "since": since, "until": until,
        "dora": local_dora(read, since, until),
        "incidents": _incidents(read, since, until),
        "rollouts": _rollouts(read, since, until),
        "optional": [{"title": title, "table": table, "data": _generic(read, table, cols, since, until)}
                     for title, table, cols in OPTIONAL_TABLES],
        "audit": _audit_summary(read),
    }


def _audit_summary(read: Any) -> dict[str, Any] | None:
    if not _table_exists(read, "audit"):
        return None
    rows = read("SELECT count(*) AS n FROM audit", []).to_pylist()
    return {"records": rows[0]["n"]}


def render(data: dict[str, Any]) -> str:
    return _env().get_template("report.html.j2").render(**data)


def write_report(read: Any, since: float, until: float, path: Path, *, cube: str = "") -> dict[str, Any]:
    data = build(read, since, until, cube=cube)
    html = render(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(path)
    return {"path": str(path), "bytes": len(html.encode()), "incidents": len(data["incidents"]),
            "rollouts": len(data["rollouts"]), "dora": data["dora"]}
