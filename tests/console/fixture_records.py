"""A hand-built DuckDB store of rollouts, incidents and actions, with its DORA numbers worked out by hand."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from samantha.loop import tables
from samantha.rollout.record import ROLLOUTS_DDL, RolloutRecord

T0 = 1_800_000_000.0
SINCE, UNTIL = T0, T0 + 2 * 86400


def _bundle(root: Path, name: str, created: float) -> str:
    d = root / name
    d.mkdir(parents=True)
    (d / "manifest.json").write_text(json.dumps({"name": name, "version": "1",
                                                 "created_at": datetime.fromtimestamp(created, UTC).isoformat()}))
    return str(d)


def _rollout(con: duckdb.DuckDBPyConnection, rid: str, path: str, started: float, ended: float, phase: str,
             verdicts: list | None = None, decisions: list | None = None) -> None:
    doc = {"id": rid, "request_id": "req-" + rid, "bundle_ref": rid, "bundle_id": rid + "-bundle", "bundle_label": rid,
           "bundle_path": path, "expires_at": ended + 86400, "policy_name": "default", "policy_version": 1,
           "steps": [1.0, 5.0, 25.0, 50.0, 100.0], "started_at": started, "updated_at": ended, "ended_at": ended,
           "phase": phase, "step_verdicts": verdicts or [], "decisions": decisions or []}
    RolloutRecord.model_validate(doc)  # the controller resumes from the newest row: it must be a real record
    # two revisions: only the newest counts
    con.execute("INSERT INTO rollouts VALUES (?, 0, ?, 'loading', ?, ?)", [rid, started, doc["bundle_id"],
                                                                           json.dumps({**doc, "phase": "loading",
                                                                                       "ended_at": None})])
    con.execute("INSERT INTO rollouts VALUES (?, 1, ?, ?, ?, ?)", [rid, ended, phase, doc["bundle_id"], json.dumps(doc)])


def _step(status: str, ts: float) -> dict:
    return {"step": 0, "weight": 1.0, "status": status, "reason": f"canary errors {status}", "ts": ts,
            "canary_samples": 500, "min_samples": 200, "elapsed_s": 30, "min_duration_s": 30,
            "verdicts": [{"gate": "canary_errors", "kind": "error_rate", "status": status, "reason": "x", "ts": ts,
                          "window": [ts - 30, ts]}]}


def _action(con: duckdb.DuckDBPyConnection, aid: str, inc: str, kind: str, status: str, created: float,
            done: float | None, verified: float | None) -> None:
    con.execute("INSERT INTO actions VALUES (?, ?, ?, '-', 'r', 'playbook', NULL, NULL, ?, '{}', '{}', '{}', NULL, ?, ?, ?,"
                " ?, ?)", [aid, aid, kind, inc, status, created, done, verified, created])


def _incident(con: duckdb.DuckDBPyConnection, iid: str, opened: float) -> None:
    con.execute("INSERT INTO incidents VALUES (?, ?, ?, 'critical', 'closed', ?, ?, ?, ?, '[\"p\"]', '[\"g\"]', '{}',"
                " '[]', '[]', NULL, NULL, NULL)", [iid, iid, f"incident {iid}", opened, opened + 60, opened,
                                                  opened + 60])


def build_store(db: Path, bundles: Path) -> None:
    con = duckdb.connect(str(db))
    try:
        tables.create(con.execute)
        con.execute(ROLLOUTS_DDL)
        con.execute("CREATE TABLE requests (ts DOUBLE, slot VARCHAR, bundle VARCHAR, latency_ms DOUBLE, ok BOOLEAN, "
                    "divergence DOUBLE, shadow BOOLEAN)")
        _rollout(con, "r1", _bundle(bundles, "b1", T0), T0 + 3600, T0 + 4200, "promoted")
        _rollout(con, "r2", _bundle(bundles, "b2", T0 + 10000), T0 + 17200, T0 + 18100, "promoted")
        _rollout(con, "r3", _bundle(bundles, "b3", T0 + 19000), T0 + 20000, T0 + 20300, "aborted",
                 [_step("pass", T0 + 20100), _step("fail", T0 + 20290)],
                 [{"ts": T0 + 20290.4, "kind": "weights", "target": "b3", "reason": "regression", "result": "done",
                   "corrective": True}])
        _rollout(con, "r4", _bundle(bundles, "b4", T0 + 29000), T0 + 29990, T0 + 30000, "failed")
        _rollout(con, "r5", _bundle(bundles, "b5", T0), T0 + 3 * 86400, T0 + 3 * 86400 + 60, "promoted")  # outside
        _incident(con, "inc-a", T0 + 40000)
        _action(con, "act-a", "inc-a", "flip", "verified", T0 + 40000.1, T0 + 40000.5, T0 + 40000.8)
        _incident(con, "inc-b", T0 + 50000)
        _action(con, "act-b0", "inc-b", "alert", "done", T0 + 50000.0, T0 + 50000.0, None)
        _action(con, "act-b", "inc-b", "quarantine", "done", T0 + 50001.0, T0 + 50002.0, None)
        _incident(con, "inc-c", T0 + 60000)
        _action(con, "act-c", "inc-c", "alert", "done", T0 + 60000.0, T0 + 60000.0, None)
        rows = []
        for i in range(600):  # 60 s of requests around inc-a, errors after onset on the active slot
            ts = T0 + 39990 + i * 0.1
            rows.append((ts, "active", "b2", 20.0 if ts < T0 + 40000 else 90.0, ts < T0 + 40000 or i % 3 != 0, None,
                         False))
        con.executemany("INSERT INTO requests VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    finally:
        con.close()


# Worked out by hand from the records above.
EXPECTED = {
    "deployment_frequency": {"per_day": 1.0, "bundles_promoted": 2, "rollouts_ended": 4},
    "lead_time": {"p50_s": 6150.0, "p95_s": 7905.0, "on_cube": {"p50_s": 750.0, "p95_s": 885.0},
                  "disconnected": {"p50_s": 5400.0, "p95_s": 7020.0}},
    "change_failure_rate": {"rate": 0.5, "failed": 2, "total": 4, "by_phase": {"promoted": 2, "aborted": 1,
                                                                               "failed": 1}},
    "mttr": {"n": 3, "p50_s": 0.8, "p95_s": 1.88},
}


def assert_subset(actual: dict, expected: dict, path: str = "") -> None:
    """Every expected figure (nested), compared with pytest.approx; extra keys in `actual` are ignored."""
    for k, v in expected.items():
        if isinstance(v, dict):
            assert_subset(actual[k], v, f"{path}{k}.")
        else:
            assert actual[k] == pytest.approx(v), f"{path}{k}: {actual[k]} != {v}"
