"""One fault, one incident, across a flip (real twin, real daemon, real DuckDB).

The active slot starts failing; Samantha flips. The gate over the active role must then judge
only the new active bundle's requests: no second firing on the healthy bundle, no second
incident keyed on it, no refused flip back. The one incident closes once its gates are quiet and
its flip is verified, with the resolution time recorded and its alert resolved; its summary is
code-written from the evidence.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from tests.sre.kit import flips, load_and_flip, twin_and_daemon, wait_for


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_flip_leaves_exactly_one_incident_that_closes_with_its_alert(tmp_path: Path) -> None:
    with twin_and_daemon(tmp_path, sre={"incident_close_after_s": 4.0}) as (twin, daemon):
        wait_for(lambda: daemon.client.status()["verdicts"], 30, "first gate verdicts")
        good = twin.cube.state().slot("active").bundle_id
        load_and_flip(twin, "bad-1", "1", error_rate=0.5)
        bad = twin.cube.state().slot("active").bundle_id

        flip = wait_for(lambda: [a for a in flips(daemon) if a["status"] == "verified"], 45, "a verified flip")[0]
        assert twin.cube.state().slot("active").bundle_id == good
        inc = wait_for(lambda: (i := daemon.client.get(f"/v1/incidents/{flip['incident_id']}"))["status"] == "closed"
                       and i, 45, "the incident closed")
        incidents = daemon.client.incidents()
        assert daemon.stop() == 0, daemon.tail()

    # exactly one incident, about the bad bundle; none ever opened on the healthy one
    assert [i["id"] for i in incidents] == [inc["id"]], [(i["key"], i["gates"]) for i in incidents]
    assert inc["key"] == f"active:{bad[:16]}"
    assert not any(good[:16] in i["key"] for i in incidents)
    # no refused flip back (nor any other refusal), one flip only
    assert inc["refusals"] == [], inc["refusals"]
    # resolution recorded, after the verified flip
    assert inc["closed_ts"] is not None and inc["closed_ts"] >= flip["verified_ts"]
    # the headline is code-written: the gate, its number against the threshold, the bundle, the verified flip
    s = inc["summary"]
    assert s.startswith("active-errors-fast failed on the active slot, bundle ") and bad[:16] in s, s
    assert "vs threshold 0.2" in s and "n=" in s and "flipped traffic to the standby slot" in s, s
    assert "verified; traffic left bundle" in s and "Resolved at" in s, s

    con = duckdb.connect(str(Path(daemon.config.data_dir) / "telemetry.duckdb"), read_only=True)
    try:
        flip_rows = con.execute("SELECT count(*) FROM actions WHERE kind = 'flip'").fetchone()[0]
        alerts = con.execute("SELECT status, labels, summary FROM alerts").fetchall()
        refusals = con.execute("SELECT count(*) FROM audit WHERE kind = 'refusal'").fetchone()[0]
    finally:
        con.close()
    assert flip_rows == 1 and refusals == 0
    mine = [a for a in alerts if json.loads(a[1]).get("incident") == inc["id"]]
    assert mine and all(a[0] == "resolved" for a in mine), alerts  # Alertmanager `resolved`, with the incident
    assert all(a[2] == s for a in mine)  # the resolved notice carries the final code-written summary
