"""Scenario measurement on a real twin run with Samantha beside it (real DuckDB, real processes)."""

from __future__ import annotations

import pytest

from samantha.harness.scenario_run import run_scenario
from samantha.twin.scenario import Scenario

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]


def test_detection_mitigation_and_actions_come_from_the_store() -> None:
    sc = Scenario.model_validate({
        "name": "measure-check", "duration_s": 12, "traffic": {"rps": 150},
        "events": [
            {"at": 2, "deploy": {"bundle": "2", "seed": 0, "profile": {"error_rate": 0.3}, "rollout": True}},
        ]})
    out = run_scenario(sc)
    [caught] = out["faults"]
    # onset is the bad bundle's first request (loading it takes a moment), not the deploy event
    assert 2 <= caught["onset_s"] < 5 and caught["detected_s"] is not None and caught["mitigated_s"] is not None
    assert caught["onset_s"] <= caught["detected_s"] <= caught["mitigated_s"] < 8, caught
    assert caught["ttm_s"] < 3
    kinds = [(a["kind"], a["corrective"]) for a in out["actions"]]
    assert ("load", False) in kinds and ("quarantine", True) in kinds and ("weights", True) in kinds
    assert all(2 <= a["time_s"] <= 8 for a in out["actions"])
    assert out["false_actions"] == 0
    assert caught["bundle_id"] in out["final_state"]["quarantine"]


def test_corrective_action_outside_a_fault_window_counts_as_false() -> None:
    import duckdb  # pure logic of the window rule, on DuckDB SQL like the store

    from samantha.harness.measure import measure

    con = duckdb.connect()
    con.execute("CREATE TABLE requests (ts DOUBLE, slot VARCHAR, bundle VARCHAR, latency_ms DOUBLE, ok BOOLEAN, "
                "divergence DOUBLE, shadow BOOLEAN)")
    con.execute("CREATE TABLE actions (created_ts DOUBLE, kind VARCHAR, target VARCHAR, reason VARCHAR, "
                "status VARCHAR, requested_by VARCHAR)")
    con.execute("INSERT INTO actions VALUES (1003, 'flip', 'standby', 'r', 'done', 'playbook'), "
                "(1030, 'quarantine', 'b', 'r', 'done', 'playbook')")
    con.execute("INSERT INTO requests VALUES (1001, 'active', 'x', 1, true, NULL, false), "
                "(1004, 'active', 'x', 1, true, NULL, false)")

    class Reader:
        def read_arrow(self, sql, params=None):
            return con.sql(sql, params=params).to_arrow_table()

    fault = {"kind": "toxic_latency", "onset_s": 2.0, "cleared_s": 10.0, "bundle_id": "x"}
    m = measure(Reader(), [fault], 1000.0, 60.0, 1060.0)
    assert m["false_actions"] == 1 and m["false_action_list"][0]["kind"] == "quarantine"
    assert m["faults"][0]["detected_s"] == 3.0 and m["faults"][0]["mitigated_s"] == 4.0
