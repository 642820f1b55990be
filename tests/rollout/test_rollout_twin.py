"""End to end on the real twin and a real `samantha run` daemon: real processes, loopback HTTP, the
daemon's own DuckDB file, the real gate judge and the shipped playbooks beside the rollout controller."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from samantha.cube.protocol import CubeError
from tests.rollout.kit import rollout_env, short_policy

pytestmark = [pytest.mark.slow, pytest.mark.timeout(200)]


def wait_for(get, done, timeout: float):
    deadline = time.monotonic() + timeout
    v = None
    while time.monotonic() < deadline:
        v = get()
        if done(v):
            return v
        time.sleep(0.1)
    raise AssertionError(f"timed out; last: {v}")


def test_bad_canary_aborted_at_an_early_step_snapped_back_and_quarantined(tmp_path: Path) -> None:
    with rollout_env(tmp_path, short_policy(shadow=False), rps=200) as env:
        cube = env.twin.cube
        time.sleep(2)  # incumbent traffic before the rollout
        bad = env.twin.bundle("v2-bad", seed=0, version="2", error_rate=0.2)
        t0 = time.time()
        r = env.post("/v1/rollout/start", json={"bundle": "v2-bad", "request_id": "req-bad-1"})
        assert r.status_code == 200, r.text
        st = wait_for(env.status, lambda s: s["phase"] in ("aborted", "promoted", "failed"), 60)
        assert st["phase"] == "aborted", st["rollout"]["reason"]
        rec = st["rollout"]
        # caught at 1% or 5%: by the rollout's own step gate, or first by the daemon's bad-canary playbook
        fails = [v for v in rec["step_verdicts"] if v["status"] == "fail"]
        if fails:
            assert fails[-1]["step"] in (0, 1) and any(g["gate"] == "canary-errors" and g["status"] == "fail"
                                                       for g in fails[-1]["verdicts"]), fails
        else:
            assert "playbook bad-canary" in rec["reason"] and rec["step"] in (0, 1), rec
        # quarantined by hash, whichever judge called it
        state = wait_for(cube.state, lambda s: s.is_quarantined(bad.bundle_id), 10)
        assert state.weights.standby == 0
        assert state.slot("active").bundle_name == "sensor-mlp" and state.slot("active").bundle_version == "1"
        snap = next(d for d in rec["decisions"] if d["kind"] == "weights" and d["corrective"])
        assert snap["result"] == "done"
        # traffic is off the bad bundle in the router's own telemetry, not only in the API reply
        time.sleep(1.5)
        m = env.measure([{"kind": "bad_bundle", "onset_s": 0.0, "bundle_id": bad.bundle_id}], t0, time.time())
        fault = m["faults"][0]
        assert fault["mitigated_s"] is not None and fault["mitigated_s"] <= snap["ts"] - t0 + 0.5, (fault, snap)
        assert fault["detected_s"] is not None and fault["detected_s"] <= fault["mitigated_s"] + 0.5
        assert m["by_role"]["active"]["n"] > 50
        # quarantined: never loaded again, neither through the daemon nor directly
        r = env.post("/v1/rollout/start", json={"bundle": "v2-bad", "request_id": "req-bad-2"})
        assert r.status_code == 409 and r.json()["error"]["code"] == "quarantined"
        with pytest.raises(CubeError) as e:
            cube.load(str(Path(env.twin.st["bundles_dir"]) / "v2-bad"), request_id="direct-load-1")
        assert e.value.code == "quarantined"
        # the snap-back was recorded in the daemon's DuckDB file (read once the daemon has stopped)
        with env.stopped_db() as db:
            rows = db.execute("SELECT kind, status FROM actions WHERE kind = 'abort_rollout'").fetchall()
            assert rows and all(st in ("done", "verified") for _, st in rows), rows


def test_good_rollout_promoted_through_every_step_via_the_api(tmp_path: Path) -> None:
    with rollout_env(tmp_path, short_policy(shadow=True, step_s=1.0, soak_s=3.0), rps=150) as env:
        cube = env.twin.cube
        old = cube.state().slot("active").bundle_id
        time.sleep(2)
        new = env.twin.bundle("v2", seed=0, version="2")  # same weights, new release: no divergence
        # bad calls are refused with reasons and change nothing
        for body, status, code in (({"bundle": "v2"}, 422, "invalid"),
                                   ({"bundle": "v2", "request_id": "bad id!"}, 422, "invalid"),
                                   ({"bundle": "nope", "request_id": "r1"}, 404, "not_found"),
                                   ({"bundle": "v2", "request_id": "r1", "x": 1}, 422, "invalid")):
            r = env.post("/v1/rollout/start", json=body)
            assert r.status_code == status and r.json()["error"]["code"] == code, r.text
        r = env.post("/v1/rollout/start", content=b"{not json")
        assert r.status_code == 400 and r.json()["error"]["code"] == "bad_json"
        r = env.post("/v1/rollout/abort", json={"reason": "x"})
        assert r.status_code == 409 and r.json()["error"]["code"] == "no_rollout"
        assert env.status()["phase"] == "idle"

        r = env.post("/v1/rollout/start", json={"bundle": new.bundle_id[:12], "request_id": "req-good-1"})
        assert r.status_code == 200, r.text
        r2 = env.post("/v1/rollout/start", json={"bundle": "v2", "request_id": "req-good-2"})
        assert r2.status_code == 409 and r2.json()["error"]["code"] == "rollout_in_progress"
        r = env.post("/v1/rollout/abort", json={"reason": ""})
        assert r.status_code == 422 and r.json()["error"]["field"] == "reason"
        weights = set()

        def poll():
            doc = env.status()
            weights.add(doc["weight"])
            return doc
        doc = wait_for(poll, lambda d: d["phase"] in ("promoted", "aborted", "failed"), 90)
        assert doc["phase"] == "promoted", doc["rollout"]["reason"]
        rec = doc["rollout"]
        assert [v["step"] for v in rec["step_verdicts"]] == ["shadow", 0, 1, 2, 3, 4]
        assert all(v["status"] == "pass" for v in rec["step_verdicts"])
        assert {1.0, 5.0, 25.0, 50.0, 100.0} <= weights
        state = cube.state()
        assert state.slot("active").bundle_id == new.bundle_id and state.slot("standby").bundle_id == old
        assert state.weights.standby == 0 and not state.shadow and not state.quarantine
        assert rec["last_known_good"] == old
        # the daemon took no corrective action on a good rollout (no false actions)
        time.sleep(1.0)
        m = env.measure([], rec["started_at"] - 1, time.time())
        assert m["false_actions"] == 0, m["false_action_list"]
        # the rollout's transitions and live canary traffic are in the daemon's DuckDB file
        with env.stopped_db() as db:
            phases = [p for (p,) in db.execute("SELECT phase FROM rollouts WHERE rollout_id = ? ORDER BY rev",
                                               [rec["id"]]).fetchall()]
            assert phases[0] == "loading" and phases[-1] == "promoted" and "soak" in phases
            (live,) = db.execute("SELECT count(*) FROM requests WHERE bundle = ? AND NOT shadow AND ts < ?",
                                 [new.bundle_id, rec["ended_at"] - 0.5]).fetchone()
            assert live > 100
