"""DORA for the edge: the four metrics from a Cube's own records (or a fleet's Parquet).

Redefined for a disconnected appliance:
- deployment frequency: distinct signed bundles promoted on the Cube per day;
- lead time: bundle `created_at` -> promoted here. The part before the Cube first saw the
  bundle (rollout start) is the delivery latency of a mostly-offline link; it is reported
  separately (`disconnected_*`) as measured latency, not as a failure, and `on_cube_*`
  is what the Cube itself took;
- change failure rate: rollouts that ended aborted (snapped back / rolled back) or failed,
  over all rollouts that ended in the window;
- MTTR: fault onset as seen locally (the first failing verdict: incident opened, or the
  rollout step that regressed) -> mitigated (the local flip, quarantine or snap-back that
  took traffic off the bad slot; its verified time when verification completed), p50/p95.

`compute()` is pure; `local_records()` reads the daemon's DuckDB tables and
`fleet_dora()` runs the same computation over Parquet files (one row set per cube).
Percentiles are numpy's default (linear interpolation).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from samantha.reporting.records_access import table_exists as _table_exists

DAY = 86400.0
TERMINAL = ("promoted", "aborted", "failed")
MITIGATING = ("flip", "quarantine", "weights", "abort_rollout")


class RolloutFact(BaseModel):
    model_config = ConfigDict(extra="ignore")
    cube: str = "local"
    rollout_id: str
    bundle_id: str
    bundle_label: str = ""
    bundle_created_at: float | None = None
    started_at: float
    ended_at: float | None = None
    phase: str


class RecoveryFact(BaseModel):
    model_config = ConfigDict(extra="ignore")
    cube: str = "local"
    source: str  # incident | rollout
    ref: str
    onset_ts: float
    mitigated_ts: float
    kind: str = ""


def _q(values: Sequence[float], p: float) -> float | None:
    return round(float(np.quantile(np.asarray(values, dtype=float), p)), 3) if len(values) else None


def _dist(values: Sequence[float]) -> dict[str, Any]:
    return {"n": len(values), "p50_s": _q(values, 0.5), "p95_s": _q(values, 0.95),
            "mean_s": round(float(np.mean(values)), 3) if len(values) else None}


def compute(rollouts: Sequence[RolloutFact], recoveries: Sequence[RecoveryFact], since: float, until: float
            ) -> dict[str, Any]:
    """The four metrics over rollouts that ended, and recoveries mitigated, in [since, until]."""
    if until <= since:
        raise ValueError("until must be after since")
    days = (until - since) / DAY
    ended = [r for r in rollouts if r.phase in TERMINAL and r.ended_at is not None and since <= r.ended_at <= until]
    promoted = [r for r in ended if r.phase == "promoted"]
    failed = [r for r in ended if r.phase in ("aborted", "failed")]
    bundles = sorted({r.bundle_id for r in promoted})

    lead, on_cube, disconnected, per_bundle = [], [], [], []
    for r in promoted:
        if r.bundle_created_at is None:
            continue
        assert r.ended_at is not None
        total = r.ended_at - r.bundle_created_at
        delivery = max(0.0, r.started_at - r.bundle_created_at)
        lead.append(total)
        disconnected.append(delivery)
        on_cube.append(r.ended_at - r.started_at)
        per_bundle.append({"cube": r.cube, "bundle": r.bundle_label or r.bundle_id[:16], "rollout": r.rollout_id,
                           "lead_time_s": round(total, 3), "disconnected_s": round(delivery, 3),
                           "on_cube_s": round(r.ended_at - r.started_at, 3)})

    recs = [r for r in recoveries if since <= r.mitigated_ts <= until]
    ttr = [max(0.0, r.mitigated_ts - r.onset_ts) for r in recs]
    by_phase: dict[str, int] = {}
    for r in ended:
        by_phase[r.phase] = by_phase.get(r.phase, 0) + 1
    return {
        "window": {"since": since, "until": until, "days": round(days, 6)},
        "deployment_frequency": {"per_day": round(len(bundles) / days, 6), "bundles_promoted": len(bundles),
                                 "rollouts_ended": len(ended)},
        "lead_time": {**_dist(lead), "on_cube": _dist(on_cube), "disconnected": _dist(disconnected),
                      "bundles_without_created_at": sum(1 for r in promoted if r.bundle_created_at is None),
                      "per_bundle": per_bundle},
        "change_failure_rate": {"rate": round(len(failed) / len(ended), 6) if ended else None,
                                "failed": len(failed), "total": len(ended), "by_phase": by_phase},
        "mttr": {**_dist(ttr), "recoveries": [{**r.model_dump(), "ttr_s": round(t, 3)} for r, t in zip(recs, ttr,
                                                                                                     strict=True)]},
    }


# ---- the Cube's own records ----
def _created_at(bundle_path: str) -> float | None:
    """The bundle manifest's created_at (epoch s); None when the bundle is gone from disk."""
    from datetime import datetime

    try:
        doc = json.loads((Path(bundle_path) / "manifest.json").read_text())
        v = doc.get("created_at")
        return float(v) if isinstance(v, int | float) else datetime.fromisoformat(str(v)).timestamp()
    except (OSError, ValueError, TypeError):
        return None


def local_records(read: Any, *, final_only: bool = False) -> tuple[list[RolloutFact], list[RecoveryFact]]:
    """Rollouts (newest revision of each) and recoveries from the daemon's tables.

    `read(sql, params)` returns an Arrow table (TelemetryStore.read_arrow or a read-only connection).
    `final_only`: only facts that can no longer change (what the uplink ships once): rollouts that
    ended, and incident recoveries whose mitigating action was verified or whose incident closed.
    """
    rollouts: list[RolloutFact] = []
    recoveries: list[RecoveryFact] = []
    if _table_exists(read, "rollouts"):
        t = read("SELECT doc FROM (SELECT doc, row_number() OVER (PARTITION BY rollout_id ORDER BY rev DESC) AS n "
                 "FROM rollouts) WHERE n = 1", [])
        for raw in t.column(0).to_pylist():
            doc = json.loads(raw) if isinstance(raw, str) else raw
            if final_only and doc["phase"] not in TERMINAL:
                continue
            rollouts.append(RolloutFact(rollout_id=doc["id"], bundle_id=doc["bundle_id"],
                                        bundle_label=doc.get("bundle_label", ""),
                                        bundle_created_at=doc.get("bundle_created_at") or _created_at(doc["bundle_path"]),
                                        started_at=doc["started_at"], ended_at=doc.get("ended_at"), phase=doc["phase"]))
            rec = _rollout_recovery(doc)
            if rec is not None:
                recoveries.append(rec)
    if _table_exists(read, "incidents") and _table_exists(read, "actions"):
        inc = read("SELECT id, opened_ts, status FROM incidents", []).to_pylist()
        acts = read("SELECT incident_id, kind, status, done_ts, verified_ts FROM actions WHERE incident_id IS NOT NULL "
                    "AND status IN ('done', 'verified') ORDER BY created_ts", []).to_pylist()
        first: dict[str, dict[str, Any]] = {}
        for a in acts:
            if a["kind"] in MITIGATING and a["incident_id"] not in first:
                first[a["incident_id"]] = a
        for i in inc:
            a = first.get(i["id"])
            if a is None or (final_only and a["status"] != "verified" and i["status"] != "closed"):
                continue
            ts = a["verified_ts"] or a["done_ts"]
            if ts is not None:
                recoveries.append(RecoveryFact(source="incident", ref=i["id"], onset_ts=i["opened_ts"],
                                               mitigated_ts=ts, kind=a["kind"]))
    return rollouts, recoveries


def _rollout_recovery(doc: dict[str, Any]) -> RecoveryFact | None:
    """A regression the rollout caught: the failing step verdict -> the snap-back that followed."""
    fails = [v for v in doc.get("step_verdicts") or [] if v.get("status") == "fail"]
    if not fails:
        return None
    onset = fails[0]["ts"]
    snap = next((d for d in doc.get("decisions") or [] if d.get("kind") == "weights" and d.get("corrective")
                 and d.get("result") == "done" and d["ts"] >= onset), None)
    if snap is None:
        return None
    return RecoveryFact(source="rollout", ref=doc["id"], onset_ts=onset, mitigated_ts=snap["ts"], kind="snap_back")


def local_dora(read: Any, since: float, until: float) -> dict[str, Any]:
    rollouts, recoveries = local_records(read)
    return {"scope": "cube", **compute(rollouts, recoveries, since, until)}


# ---- the fleet (hub Parquet) ----
def _read_facts(con: Any, glob: str | None, model: type[BaseModel], key: tuple[str, ...]) -> list[Any]:
    """Rows of a Parquet dataset (hive `cube=` partitions as text); none when no file matches yet.
    The same fact stored twice (a Cube that lost its outbox and sent it again) counts once."""
    if not glob or not con.sql("SELECT count(*) FROM glob(?)", params=[glob]).fetchall()[0][0]:
        return []
    rows = con.sql("SELECT * FROM read_parquet(?, union_by_name = true, hive_partitioning = true, "
                   "hive_types_autocast = false)", params=[glob]).to_arrow_table().to_pylist()
    seen: dict[tuple[Any, ...], Any] = {}
    for r in rows:
        fact = model.model_validate({k: v for k, v in r.items() if v is not None})
        seen.setdefault(tuple(getattr(fact, k) for k in key), fact)
    return list(seen.values())


def fleet_dora(rollouts_glob: str, recoveries_glob: str | None, since: float, until: float) -> dict[str, Any]:
    """The same metrics over the fleet's Parquet: columns of RolloutFact / RecoveryFact, the cube from a
    `cube` column or the hub's `cube=` partition. Reported per cube and for the whole fleet."""
    import duckdb

    con = duckdb.connect()
    try:
        ro: list[RolloutFact] = _read_facts(con, rollouts_glob, RolloutFact, ("cube", "rollout_id"))
        rc: list[RecoveryFact] = _read_facts(con, recoveries_glob, RecoveryFact, ("cube", "source", "ref"))
    finally:
        con.close()
    cubes = sorted({r.cube for r in ro} | {r.cube for r in rc})
    per_cube = {c: compute([r for r in ro if r.cube == c], [r for r in rc if r.cube == c], since, until)
                for c in cubes}
    fleet = compute(ro, rc, since, until)
    fleet["deployment_frequency"]["per_day_per_cube"] = (
        round(fleet["deployment_frequency"]["per_day"] / len(cubes), 6) if cubes else None)
    fleet["deployment_frequency"]["promotions"] = sum(c["deployment_frequency"]["bundles_promoted"]
                                                      for c in per_cube.values())
    return {"scope": "fleet", "cubes": cubes, **fleet, "per_cube": per_cube}


def hub_dora(root: str | Path, since: float, until: float) -> dict[str, Any]:
    """Fleet DORA over a hub's storage root (`reported/<kind>/cube=<id>/day=<d>/*.parquet`)."""
    base = Path(root) / "reported"
    return {**fleet_dora(str(base / "rollouts" / "**" / "*.parquet"), str(base / "recoveries" / "**" / "*.parquet"),
                         since, until), "hub": str(root)}
