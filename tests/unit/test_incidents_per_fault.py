"""Scenario measurement of incidents (over a real DuckDB file): one per fault, and false ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from samantha.harness.measure import incidents_by_fault
from samantha.loop import tables

T0 = 1_800_000_000.0


class Reader:
    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def read_arrow(self, sql: str, params: list[Any] | None = None) -> Any:
        return self.con.sql(sql, params=params).to_arrow_table()


def test_incidents_count_for_their_fault_and_healthy_subjects_are_false(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "m.duckdb"))
    tables.create(con.execute)
    bad, good = "b" * 64, "g" * 64
    for i, (key, at) in enumerate([(f"active:{bad[:16]}", 12.0), (f"active:{good[:16]}", 13.0), ("host", 50.0),
                                   (f"active:{bad[:16]}", 200.0)]):
        con.execute("INSERT INTO incidents (id, key, title, severity, status, opened_ts, updated_ts, last_fail_ts, "
                    "playbooks, gates, evidence, actions, refusals) VALUES (?, ?, 't', 'critical', 'open', ?, ?, ?, "
                    "'[]', '[]', '{}', '[]', '[]')", [f"inc-{i}", key, T0 + at, T0 + at, T0 + at])
    faults = [{"onset_s": 10.0, "cleared_s": 20.0, "bundle_id": bad}, {"onset_s": 45.0, "cleared_s": 55.0}]
    per, false = incidents_by_fault(Reader(con), faults, T0, 300.0)
    assert per == [1, 1]  # the bad bundle's one incident; the unbundled fault's host incident
    # the healthy bundle's incident inside the window, and one long after every fault: both false
    assert [f["id"] for f in false] == ["inc-1", "inc-3"]
