"""Fleet DORA at the hub: facts queued once by the Cube, stored as Parquet per cube and day, and
`samantha hub dora` checked against numbers worked out by hand for two cubes."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from samantha.core.clock import SimClock
from samantha.core.signing import sha256_hex
from samantha.hub.storage import HubStorage
from samantha.reporting.records_access import open_reader
from samantha.uplink.dora_facts import RECOVERY_SCHEMA, ROLLOUT_SCHEMA, final_fact_tables, queue_dora_facts
from samantha.uplink.outbox import Outbox, from_parquet, to_parquet
from tests.console.fixture_records import EXPECTED, SINCE, T0, UNTIL, assert_subset, build_store
from tests.uplink.kit import cli

CUBE_B = "0042"  # digits only: the hub's cube= partition must stay text, not become 42


def _rollout(rid: str, bundle: str, created: float, started: float, ended: float, phase: str) -> dict:
    return {"ts": ended, "record_key": f"rollouts:{rid}", "rollout_id": rid, "bundle_id": bundle, "bundle_label": rid,
            "bundle_created_at": created, "started_at": started, "ended_at": ended, "phase": phase}


def _recovery(source: str, ref: str, onset: float, mitigated: float) -> dict:
    return {"ts": mitigated, "record_key": f"recoveries:{source}:{ref}", "source": source, "ref": ref,
            "onset_ts": onset, "mitigated_ts": mitigated, "kind": "flip"}


CUBE_B_ROLLOUTS = [
    _rollout("b-r1", "r2-bundle", T0 + 10000, T0 + 30000, T0 + 30600, "promoted"),  # the bundle cube-a promoted too
    _rollout("b-r2", "bx", T0 + 40000, T0 + 40100, T0 + 40200, "aborted"),
    _rollout("b-r3", "old", T0 - 1000, T0 - 500, T0 - 100, "promoted"),  # ended before the window
    _rollout("b-r4", "by", T0 + 50000, T0 + 50000, T0 + 50300, "promoted"),  # never disconnected
]
CUBE_B_RECOVERIES = [_recovery("rollout", "b-r2", T0 + 40150, T0 + 40150.5),
                     _recovery("incident", "inc-z", T0 + 45000, T0 + 45002)]

# By hand. cube-b: promoted r2-bundle (lead 20600 = 20000 disconnected + 600 on the Cube) and by (300 = 0 + 300);
# 1 of 3 ended rollouts aborted; recoveries 0.5 s and 2 s. Percentiles interpolate linearly.
EXPECTED_B = {
    "deployment_frequency": {"per_day": 1.0, "bundles_promoted": 2, "rollouts_ended": 3},
    "lead_time": {"n": 2, "p50_s": 10450.0, "p95_s": 19585.0, "on_cube": {"p50_s": 450.0, "p95_s": 585.0},
                  "disconnected": {"p50_s": 10000.0, "p95_s": 19000.0}},
    "change_failure_rate": {"rate": 0.333333, "failed": 1, "total": 3},
    "mttr": {"n": 2, "p50_s": 1.25, "p95_s": 1.925},
}
# The fleet: leads [300, 4200, 8100, 20600], disconnected [0, 3600, 7200, 20000], on the Cube [300, 600, 600, 900];
# 3 distinct bundles promoted (r2-bundle on both cubes) over 2 days, 4 promotions; 3 of 7 rollouts failed;
# recoveries [0.4, 0.5, 0.8, 2, 2].
EXPECTED_FLEET = {
    "cubes": ["0042", "cube-a"],
    "deployment_frequency": {"per_day": 1.5, "bundles_promoted": 3, "rollouts_ended": 7, "promotions": 4,
                             "per_day_per_cube": 0.75},
    "lead_time": {"n": 4, "p50_s": 6150.0, "p95_s": 18725.0, "on_cube": {"p50_s": 600.0, "p95_s": 855.0},
                  "disconnected": {"p50_s": 5400.0, "p95_s": 18080.0}},
    "change_failure_rate": {"rate": 0.428571, "failed": 3, "total": 7},
    "mttr": {"n": 5, "p50_s": 0.8, "p95_s": 2.0},
}


def _put(hub: HubStorage, cube: str, epoch: str, seq: int, kind: str, tbl: pa.Table) -> None:
    body = to_parquet(tbl)
    res = hub.put_batch(cube, f"{epoch}-{seq:010d}", seq=seq, kind=kind, first_ts=min(tbl.column("ts").to_pylist()),
                        sha256=sha256_hex(body), body=body, now=T0)
    assert res["status"] == "stored"


@pytest.fixture
def fixture_store(tmp_path: Path) -> Path:
    db = tmp_path / "cube-a.duckdb"
    build_store(db, tmp_path / "bundles")
    return db


@pytest.fixture
def hub_dir(tmp_path: Path, fixture_store: Path) -> Path:
    """cube-a: the facts its own records yield; cube-b: the hand-built facts above, one of them sent twice
    (under a second outbox epoch, as after a lost outbox)."""
    root = tmp_path / "hub"
    hub = HubStorage(root)
    try:
        with open_reader(fixture_store) as read:
            ro, rc = final_fact_tables(read)
        _put(hub, "cube-a", "aaaaaaaaaaaa", 1, "rollouts", ro)
        _put(hub, "cube-a", "aaaaaaaaaaaa", 2, "recoveries", rc)
        _put(hub, CUBE_B, "bbbbbbbbbbbb", 1, "rollouts", pa.Table.from_pylist(CUBE_B_ROLLOUTS, schema=ROLLOUT_SCHEMA))
        _put(hub, CUBE_B, "bbbbbbbbbbbb", 2, "recoveries",
             pa.Table.from_pylist(CUBE_B_RECOVERIES, schema=RECOVERY_SCHEMA))
        _put(hub, CUBE_B, "cccccccccccc", 1, "rollouts", pa.Table.from_pylist(CUBE_B_ROLLOUTS[:1],
                                                                               schema=ROLLOUT_SCHEMA))
    finally:
        hub.close()
    return root


def test_final_facts_from_the_cube_records(fixture_store: Path) -> None:
    with open_reader(fixture_store) as read:
        ro, rc = final_fact_tables(read)
    rows = {r["rollout_id"]: r for r in ro.to_pylist()}
    assert sorted(rows) == ["r1", "r2", "r3", "r4", "r5"]  # every ended rollout, in the window or not
    assert rows["r2"]["bundle_created_at"] == T0 + 10000 and rows["r2"]["record_key"] == "rollouts:r2"
    assert rows["r3"]["phase"] == "aborted" and rows["r3"]["ts"] == rows["r3"]["ended_at"] == T0 + 20300
    recs = {r["record_key"]: r["mitigated_ts"] - r["onset_ts"] for r in rc.to_pylist()}
    assert recs == pytest.approx({"recoveries:rollout:r3": 0.4, "recoveries:incident:inc-a": 0.8,
                                  "recoveries:incident:inc-b": 2.0})


def test_facts_are_queued_once_across_restarts(tmp_path: Path, fixture_store: Path) -> None:
    con = duckdb.connect(str(fixture_store))
    try:
        ob = Outbox(con, SimClock(UNTIL), budget_bytes=1 << 20)
        assert queue_dora_facts(ob) == {"rollouts": 5, "recoveries": 3}
        assert queue_dora_facts(ob) == {}
        # an incident whose mitigation is only done while it stays open is not final yet
        con.execute("INSERT INTO incidents SELECT * REPLACE ('inc-d' AS id, 'open' AS status, ? AS opened_ts) "
                    "FROM incidents WHERE id = 'inc-b'", [T0 + 70000])
        con.execute("INSERT INTO actions SELECT * REPLACE ('act-d' AS id, 'inc-d' AS incident_id, 'done' AS status, "
                    "? AS created_ts, ? AS done_ts) FROM actions WHERE id = 'act-b'", [T0 + 70000.5, T0 + 70001])
        assert queue_dora_facts(ob) == {}
        con.execute("UPDATE incidents SET status = 'closed' WHERE id = 'inc-d'")
        assert queue_dora_facts(ob) == {"recoveries": 1}
    finally:
        con.close()
    con = duckdb.connect(str(fixture_store))  # a restart: a new outbox over the same file
    try:
        ob = Outbox(con, SimClock(UNTIL), budget_bytes=1 << 20)
        assert queue_dora_facts(ob) == {}
        assert ob.enforce_budget()["over_budget"] is False
        rows = [r for b in ob.pending() if b["kind"] == "rollouts" for r in from_parquet(ob.offer(b["seq"])).to_pylist()]
        assert sorted(r["rollout_id"] for r in rows) == ["r1", "r2", "r3", "r4", "r5"]
        assert {b["klass"] for b in ob.pending() if b["kind"] in ("rollouts", "recoveries")} == {"critical"}
    finally:
        con.close()


@pytest.mark.timeout(120)
def test_hub_dora_matches_the_hand_computed_fleet(hub_dir: Path) -> None:
    out = cli(["hub", "dora", "--data-dir", str(hub_dir), "--since", str(SINCE), "--until", str(UNTIL), "--json"])
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["scope"] == "fleet"
    assert_subset(doc, EXPECTED_FLEET)
    assert_subset(doc["per_cube"]["cube-a"], EXPECTED)  # the same numbers `samantha dora` gives on that Cube
    assert_subset(doc["per_cube"][CUBE_B], EXPECTED_B)
    per_bundle = {(b["cube"], b["rollout"]): b for b in doc["lead_time"]["per_bundle"]}
    assert per_bundle[(CUBE_B, "b-r1")]["disconnected_s"] == 20000.0 and per_bundle[(CUBE_B, "b-r1")]["on_cube_s"] == 600
    human = cli(["hub", "dora", "--data-dir", str(hub_dir), "--since", str(SINCE), "--until", str(UNTIL)])
    assert human.returncode == 0 and "DORA (fleet)" in human.stdout and "0042: 1/day" in human.stdout, human.stdout


@pytest.mark.timeout(120)
def test_hub_dora_bad_input(tmp_path: Path, hub_dir: Path) -> None:
    out = cli(["hub", "dora", "--data-dir", str(hub_dir), "--since", "last-tuesday", "--json"])
    assert out.returncode == 2 and "--since" in out.stderr, out.stderr
    out = cli(["hub", "dora", "--data-dir", str(hub_dir), "--since", "1d", "--until", "soonish", "--json"])
    assert out.returncode == 2 and "--until" in out.stderr, out.stderr
    out = cli(["hub", "dora", "--data-dir", str(tmp_path / "nothing-here"), "--json"])
    assert out.returncode == 2 and "--data-dir" in out.stderr, out.stderr
    # an empty hub is not an error: no rollouts yet
    (tmp_path / "empty" / "reported").mkdir(parents=True)
    out = cli(["hub", "dora", "--data-dir", str(tmp_path / "empty"), "--json"])
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["cubes"] == [] and doc["change_failure_rate"]["rate"] is None
