"""Scenario measurement: when Samantha detected each fault, when traffic left the bad slot, what it did.

Everything is read from the daemon's DuckDB file after (or during) a run, never from API replies:
- mitigated: the last request row (live or shadow) served by the faulty bundle, provided the
  traffic then stayed off it until the end of the run (`quiet_s` at least);
- detected: the first failing rollout verdict on the faulty bundle, the first incident opened,
  or the first corrective action, whichever is first, inside the fault's window;
- actions: the SRE loop's `actions` table and the rollout controller's decisions (`rollouts`);
- false actions: corrective actions outside every fault window;
- incidents per fault, and false incidents (outside every fault window, or about a healthy bundle).
Times are seconds from the scenario start (`t0`, wall clock).
"""

from __future__ import annotations

import json
from typing import Any, Protocol

GRACE_S = 5.0  # a fault's window runs until it is cleared (or the run ends), plus this


class Reader(Protocol):
    def read_arrow(self, sql: str, params: list[Any] | None = None) -> Any: ...


def _has(reader: Reader, table: str) -> bool:
    t = reader.read_arrow("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table])
    return bool(t.column(0)[0].as_py())


def rollout_records(reader: Reader, since: float) -> list[dict[str, Any]]:
    """The newest revision of every rollout started at or after `since`."""
    if not _has(reader, "rollouts"):
        return []
    t = reader.read_arrow("SELECT doc FROM (SELECT doc, row_number() OVER (PARTITION BY rollout_id ORDER BY rev DESC) "
                          "AS k FROM rollouts) WHERE k = 1")
    docs = [json.loads(d) if isinstance(d, str) else d for d in t.column(0).to_pylist()]
    return sorted((d for d in docs if d["started_at"] >= since), key=lambda d: d["started_at"])


def actions_taken(reader: Reader, t0: float) -> list[dict[str, Any]]:
    """Every action from t0 on: time_s, kind, target, reason, source, corrective, result."""
    out: list[dict[str, Any]] = []
    if _has(reader, "actions"):
        rows = reader.read_arrow("SELECT created_ts, kind, target, reason, status, requested_by FROM actions "
                                 "WHERE created_ts >= ? ORDER BY created_ts", [t0]).to_pylist()
        out += [{"time_s": round(r["created_ts"] - t0, 3), "kind": r["kind"], "target": r["target"],
                 "reason": r["reason"], "source": r["requested_by"], "result": r["status"],
                 "corrective": r["requested_by"] != "rollout" and r["status"] != "failed"} for r in rows]
    for rec in rollout_records(reader, t0):
        for d in rec["decisions"]:
            out.append({"time_s": round(d["ts"] - t0, 3), "kind": d["kind"], "target": d["target"],
                        "reason": d["reason"], "source": "rollout", "result": d["result"],
                        "corrective": bool(d.get("corrective")) and d["result"] == "done"})
    return sorted(out, key=lambda a: a["time_s"])


def _window(f: dict[str, Any], duration_s: float) -> tuple[float, float]:
    end = f.get("cleared_s")
    return f["onset_s"], (duration_s if end is None else end) + GRACE_S


def detected_at(reader: Reader, f: dict[str, Any], t0: float, duration_s: float,
                actions: list[dict[str, Any]]) -> float | None:
    lo, hi = _window(f, duration_s)
    found: list[float] = []
    bundle = f.get("bundle_id")
    for rec in rollout_records(reader, t0 - 3600):
        if bundle is None or rec["bundle_id"] == bundle:
            found += [v["ts"] - t0 for v in rec["step_verdicts"] if v["status"] == "fail"]
    if _has(reader, "incidents"):
        found += [r - t0 for r in reader.read_arrow("SELECT opened_ts FROM incidents WHERE opened_ts >= ?",
                                                    [t0 + lo]).column(0).to_pylist()]
    found += [a["time_s"] for a in actions if a["corrective"]]
    inside = [x for x in found if lo <= x <= hi]
    return round(min(inside), 3) if inside else None


def mitigated_at(reader: Reader, f: dict[str, Any], t0: float, end: float, quiet_s: float = 1.0) -> float | None:
    """Last request on the faulty bundle after onset, if none came in the `quiet_s` before the run ended."""
    bundle = f.get("bundle_id")
    if bundle is None:
        return None  # input drift and the like: nothing to take traffic off
    # live requests when the bundle served any (probe mirrors to a flipped-away slot reach no user); a canary
    # only ever mirrored is mitigated when its mirrors stop
    q = "SELECT max(ts) FROM requests WHERE bundle = ? AND ts >= ?"
    last = reader.read_arrow(q + " AND NOT shadow", [bundle, t0 + f["onset_s"]]).column(0)[0].as_py()
    if last is None:
        last = reader.read_arrow(q, [bundle, t0 + f["onset_s"]]).column(0)[0].as_py()
    if last is None or last > end - quiet_s:
        return None
    return round(max(last - t0, f["onset_s"]), 3)


def traffic_by_role(reader: Reader) -> dict[str, Any]:
    """Request counts, error rate, latency and divergence per role (active, standby, shadow)."""
    rows = reader.read_arrow(
        "SELECT CASE WHEN shadow THEN 'shadow' ELSE slot END AS role, count(*) AS n, "
        "round(1 - avg(ok::INT), 4) AS error_rate, round(quantile_cont(latency_ms, 0.5), 3) AS p50_ms, "
        "round(quantile_cont(latency_ms, 0.99), 3) AS p99_ms, round(avg(divergence), 4) AS mean_divergence, "
        "count(DISTINCT bundle) AS bundles FROM requests GROUP BY 1 ORDER BY 1").to_pylist()
    return {r.pop("role"): r for r in rows}


def incidents_by_fault(reader: Reader, faults: list[dict[str, Any]], t0: float,
                       duration_s: float) -> tuple[list[int], list[dict[str, Any]]]:
    """Incidents per fault (opened inside its window, about its bundle when it has one), and the false
    incidents: opened outside every fault window, or about a bundle that no fault in the window made bad."""
    if not _has(reader, "incidents"):
        return [0 for _ in faults], []
    rows = reader.read_arrow("SELECT id, key, opened_ts FROM incidents WHERE opened_ts >= ? ORDER BY opened_ts",
                             [t0]).to_pylist()
    per = [0 for _ in faults]
    false: list[dict[str, Any]] = []
    for r in rows:
        at, subject = r["opened_ts"] - t0, (r["key"].split(":", 1)[1] if ":" in r["key"] else None)
        mine = [i for i, f in enumerate(faults) if _window(f, duration_s)[0] <= at <= _window(f, duration_s)[1]
                and (not f.get("bundle_id") or subject is None or f["bundle_id"][:16] == subject)]
        if not mine:
            false.append({"time_s": round(at, 3), "key": r["key"], "id": r["id"]})
        for i in mine[:1]:  # an incident counts for one fault only
            per[i] += 1
    return per, false


def measure(reader: Reader, faults: list[dict[str, Any]], t0: float, duration_s: float,
            end: float) -> dict[str, Any]:
    """Fill each fault's detected_s / mitigated_s; list the actions and count the false ones."""
    actions = actions_taken(reader, t0)
    filled = []
    for given in faults:
        f = dict(given)
        if f.get("kind") == "bad_bundle" and f.get("bundle_id"):
            # a bundle is faulty from its first request (loading it takes a while), plus its crash delay if any
            first = reader.read_arrow("SELECT min(ts) FROM requests WHERE bundle = ?",
                                      [f["bundle_id"]]).column(0)[0].as_py()
            if first is not None:
                f["declared_onset_s"] = f["onset_s"]
                f["onset_s"] = round(max(f["onset_s"], first - t0 + (f.get("delay_s") or 0)), 3)
        f["detected_s"] = detected_at(reader, f, t0, duration_s, actions)
        f["mitigated_s"] = mitigated_at(reader, f, t0, end)
        f["ttd_s"] = None if f["detected_s"] is None else round(f["detected_s"] - f["onset_s"], 3)
        f["ttm_s"] = None if f["mitigated_s"] is None else round(f["mitigated_s"] - f["onset_s"], 3)
        filled.append(f)
    windows = [_window(f, duration_s) for f in filled]
    false = [a for a in actions if a["corrective"] and not any(lo <= a["time_s"] <= hi for lo, hi in windows)]
    per, false_incidents = incidents_by_fault(reader, filled, t0, duration_s)
    for f, n in zip(filled, per, strict=True):
        f["incidents"] = n
    return {"faults": filled, "actions": actions, "false_actions": len(false), "false_action_list": false,
            "false_incidents": len(false_incidents), "false_incident_list": false_incidents,
            "by_role": traffic_by_role(reader)}
