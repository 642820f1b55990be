"""An active slot that starts failing is flipped to the standby, traffic leaves it, and the
anti-flap limit holds when failures repeat. Real twin, real daemon, real DuckDB."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from tests.sre.kit import flips, load_and_flip, twin_and_daemon, wait_for


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_active_failure_is_flipped_and_anti_flap_limit_holds(tmp_path: Path) -> None:
    with twin_and_daemon(tmp_path, policy={"flip_max_per_hour": 1}) as (twin, daemon):
        wait_for(lambda: daemon.client.status()["verdicts"], 30, "first gate verdicts")
        # all gates pass and nothing is open: cycles end after evaluate (the CPU saving), full ones still run
        loop = wait_for(lambda: (lp := daemon.client.status()["loop"])["quiet_cycles"] > 0 and lp, 30, "quiet cycles")
        assert loop["quiet_cycles"] < loop["cycles"]
        good = twin.cube.state().slot("active").bundle_id

        # an operator promotes a bundle that answers half of its requests with HTTP 500
        load_and_flip(twin, "bad-1", "1", error_rate=0.5)
        bad = twin.cube.state().slot("active").bundle_id
        assert bad != good

        flip = wait_for(lambda: [a for a in flips(daemon) if a["status"] == "verified"], 45,
                        "a verified flip")[0]
        state = twin.cube.state()
        assert state.slot("active").bundle_id == good  # traffic is back on the good bundle
        ev = flip["result"]["verification"]
        assert ev["method"] == "traffic_left" and ev["served_elsewhere_after"] >= 10
        assert flip["request_id"] == flip["id"] and flip["playbook"] == "active-fast"
        assert flip["before"]["active_bundle"] == bad
        inc = daemon.client.get(f"/v1/incidents/{flip['incident_id']}")
        assert flip["id"] in inc["actions"] and "active-errors-fast" in inc["gates"]
        wait_for(lambda: daemon.client.get(f"/v1/incidents/{flip['incident_id']}")["cause"] == "errors", 10,
                 "triage attached to the incident")

        # the failure repeats on the other slot: the policy allows one flip per hour, so no flip-flop
        gen = twin.cube.state().generation
        load_and_flip(twin, "bad-2", "2", error_rate=0.5)
        assert twin.cube.state().generation == gen + 2

        def refused() -> list[dict]:
            incs = daemon.client.incidents(status="open")
            return [r for i in incs for r in i["refusals"] if "flip-rate-limit" in r["violated"]]

        refusal = wait_for(refused, 45, "the second flip refused by the rate limit")[0]
        assert "1 flips already" in refusal["reasons"][refusal["violated"].index("flip-rate-limit")]
        assert len(flips(daemon)) == 1
        assert twin.cube.state().generation == gen + 2  # nothing more reached the Cube
        audit = daemon.client.get("/v1/audit/verify")
        assert audit["ok"] and audit["count"] >= 3
        done_ts = flip["done_ts"]
        assert daemon.stop() == 0, daemon.tail()

    # after a clean stop the store is the daemon's no more: check the router's telemetry independently
    con = duckdb.connect(str(Path(daemon.config.data_dir) / "telemetry.duckdb"), read_only=True)
    try:
        last_bad = con.execute("SELECT max(ts) FROM requests WHERE bundle = ? AND NOT shadow", [bad]).fetchone()[0]
        served_after = con.execute("SELECT count(*) FROM requests WHERE bundle = ? AND ts > ?",
                                   [good, last_bad]).fetchone()[0]
        flip_rows = con.execute("SELECT count(*) FROM actions WHERE kind = 'flip'").fetchone()[0]
    finally:
        con.close()
    assert last_bad < done_ts + 1.0  # only requests in flight at the flip finished on the bad bundle
    assert served_after >= 20  # the good bundle served on until the test promoted bad-2
    assert flip_rows == 1
