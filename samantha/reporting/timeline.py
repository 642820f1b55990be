"""Incident timelines: requests, errors and latency per slot, with actions marked, as SVG or PNG.

Read from the store's `requests` table (raw; the 1-minute rollup when raw rows are gone) and
drawn with matplotlib's object API (no pyplot global state: safe in the API's thread pool).
Used by the web console and by `samantha report`.
"""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING, Any

from samantha.reporting.records_access import table_exists

if TYPE_CHECKING:
    from matplotlib.figure import Figure

SLOT_COLORS = {"active": "#1f77b4", "standby": "#ff7f0e"}
ACTION_COLORS = {"flip": "#d62728", "quarantine": "#9467bd", "weights": "#2ca02c", "abort_rollout": "#2ca02c",
                 "alert": "#7f7f7f"}


def request_series(read: Any, t0: float, t1: float, buckets: int = 120) -> dict[str, Any]:
    """Per slot role: bucket start, requests/s, error share, p99 latency (ms). Shadow copies excluded."""
    bucket = max(0.25, (t1 - t0) / buckets)
    sql = ("SELECT floor(ts / ?) * ? AS b, slot, count(*) AS n, sum(CASE WHEN ok THEN 0 ELSE 1 END) AS errors, "
           "quantile_cont(latency_ms, 0.99) AS p99 FROM requests WHERE ts >= ? AND ts <= ? AND NOT shadow "
           "GROUP BY ALL ORDER BY b")
    rows = read(sql, [bucket, bucket, t0, t1]).to_pylist() if table_exists(read, "requests") else []
    if not rows and table_exists(read, "requests_1m"):
        bucket = 60.0
        rows = read("SELECT bucket AS b, slot, sum(count) AS n, sum(errors) AS errors, max(latency_p99) AS p99 "
                    "FROM requests_1m WHERE bucket >= ? AND bucket <= ? AND NOT shadow GROUP BY ALL ORDER BY b",
                    [t0 - 60, t1]).to_pylist()
    out: dict[str, Any] = {"bucket_s": bucket, "t0": t0, "t1": t1, "slots": {}}
    for r in rows:
        s = out["slots"].setdefault(r["slot"], {"t": [], "rps": [], "error_rate": [], "p99_ms": []})
        s["t"].append(float(r["b"]))
        s["rps"].append(r["n"] / bucket)
        s["error_rate"].append(r["errors"] / r["n"] if r["n"] else 0.0)
        s["p99_ms"].append(float(r["p99"]) if r["p99"] is not None else 0.0)
    return out


def figure(series: dict[str, Any], actions: list[dict[str, Any]], title: str, *, onset: float | None = None
           ) -> Figure:
    """Three stacked panels sharing a time axis (seconds from t0); actions as labelled vertical lines."""
    from matplotlib.figure import Figure  # ~25 MB resident: loaded when a page or report first draws

    fig = Figure(figsize=(9, 5.6), dpi=100, layout="constrained")
    axes = fig.subplots(3, 1, sharex=True)
    t0 = series["t0"]
    panels = (("rps", "requests/s"), ("error_rate", "error share"), ("p99_ms", "p99 latency (ms)"))
    for ax, (key, label) in zip(axes, panels, strict=True):
        for slot, s in sorted(series["slots"].items()):
            ax.plot([t - t0 for t in s["t"]], s[key], label=slot, color=SLOT_COLORS.get(slot), linewidth=1.4,
                    drawstyle="steps-post")
        ax.set_ylabel(label, fontsize=8)
        ax.grid(True, alpha=0.3)
        ax.tick_params(labelsize=7)
        if onset is not None:
            ax.axvline(onset - t0, color="#444", linestyle=":", linewidth=1)
        for a in actions:
            ax.axvline(a["ts"] - t0, color=ACTION_COLORS.get(a["kind"], "#d62728"), linestyle="--", linewidth=1.2)
    for a in actions:
        axes[0].annotate(a["kind"], xy=(a["ts"] - t0, 1.0), xycoords=("data", "axes fraction"), fontsize=7,
                         va="bottom", ha="center", color=ACTION_COLORS.get(a["kind"], "#d62728"))
    if series["slots"]:
        axes[0].legend(fontsize=7, loc="upper left")
    else:
        axes[0].text(0.5, 0.5, "no request telemetry in this window", transform=axes[0].transAxes, ha="center")
    axes[-1].set_xlabel(f"seconds from {_clock(t0)}", fontsize=8)
    fig.suptitle(title, fontsize=10)
    return fig


def _clock(ts: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def svg(fig: Figure) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    text = buf.getvalue()
    return text[text.index("<svg"):]  # inline: no XML prolog / doctype


def png_data_uri(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def incident_window(incident: dict[str, Any], actions: list[dict[str, Any]], pad_s: float = 30.0
                    ) -> tuple[float, float]:
    start = float(incident["opened_ts"]) - pad_s
    ends = [incident.get("closed_ts") or incident.get("updated_ts") or incident["opened_ts"]]
    ends += [a["ts"] for a in actions]
    return start, float(max(ends)) + pad_s


def incident_actions(read: Any, incident_id: str) -> list[dict[str, Any]]:
    """The incident's actions as timeline marks: ts (done/created), kind, status, reason."""
    rows = read("SELECT kind, status, reason, created_ts, done_ts FROM actions WHERE incident_id = ? "
                "ORDER BY created_ts", [incident_id]).to_pylist()
    return [{"ts": r["done_ts"] or r["created_ts"], "kind": r["kind"], "status": r["status"], "reason": r["reason"]}
            for r in rows]
