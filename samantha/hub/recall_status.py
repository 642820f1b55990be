"""Where a Recall stands across the fleet, read from the hub's Parquet (no hub process needed).

Known Cubes are those that ever reported anything (the writer's batch index). Each Cube's `recalls` reports
(`samantha.uplink.service`: applied with its time, blocked or refused with the reason) say what it did with
the Recall of one bundle; a known Cube with no report yet has not been reached (offline, or its report is
still in its outbox).
"""

from __future__ import annotations

import json
from typing import Any

from samantha.hub.storage import HubStorage


def recall_status(storage: HubStorage, bundle_id: str) -> dict[str, Any]:
    """{bundle_id, applied: [{cube, applied_at, was_active}], pending: [{cube, status, reason, at}],
    not_reached: [{cube, last_seen}], counts}."""
    last_seen: dict[str, float] = {}
    for b in storage.batches():
        last_seen[b["cube"]] = max(last_seen.get(b["cube"], 0.0), b["received_at"])
    reports: list[dict[str, Any]] = []
    if "recalls" in storage.kinds():
        rows = storage.query("SELECT cube, doc FROM reported_recalls ORDER BY ts")
        reports = [{**json.loads(r["doc"]), "cube": r["cube"]} for r in rows]
    by_cube: dict[str, dict[str, Any]] = {}
    for rep in reports:
        if rep.get("bundle_id") != bundle_id:
            continue
        cur = by_cube.get(rep["cube"])
        if cur is None or cur["status"] != "applied":  # applied is final; else the newest report speaks
            by_cube[rep["cube"]] = rep
    applied = [{"cube": c, "applied_at": r["ts"], "was_active": bool(r.get("was_active")),
                "actions": [a.get("kind") for a in r.get("actions") or []]}
               for c, r in sorted(by_cube.items()) if r["status"] == "applied"]
    pending = [{"cube": c, "status": r["status"], "reason": r.get("reason"), "at": r["ts"]}
               for c, r in sorted(by_cube.items()) if r["status"] != "applied"]
    not_reached = [{"cube": c, "last_seen": last_seen[c]} for c in sorted(last_seen) if c not in by_cube]
    return {"bundle_id": bundle_id, "applied": applied, "pending": pending, "not_reached": not_reached,
            "counts": {"known": len(set(last_seen) | set(by_cube)), "applied": len(applied), "pending": len(pending),
                       "not_reached": len(not_reached)}}
