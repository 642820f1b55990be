"""The known-good set survives a SIGKILL: a real twin, a real `samantha run` daemon promoting a good rollout,
killed outright, restarted on the same data dir. The set (and who vouched for each bundle, and when) is the
same after the restart, and the DuckDB file holds one row per bundle."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from samantha.harness.daemon_process import DaemonProcess
from tests.rollout.kit import rollout_env, short_policy
from tests.rollout.test_rollout_twin import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def known_good(daemon: DaemonProcess) -> dict[str, dict]:
    return {r["bundle_id"]: r for r in daemon.client.status()["known_good"]}


def test_known_good_set_survives_sigkill_and_restart(tmp_path: Path) -> None:
    with rollout_env(tmp_path, short_policy(shadow=True, step_s=1.0, soak_s=3.0), rps=150) as env:
        cube = env.twin.cube
        old = cube.state().slot("active").bundle_id
        time.sleep(2)
        new = env.twin.bundle("v2", seed=0, version="2")
        r = env.post("/v1/rollout/start", json={"bundle": "v2", "request_id": "req-kg-1"})
        assert r.status_code == 200, r.text
        doc = wait_for(env.status, lambda d: d["phase"] in ("promoted", "aborted", "failed"), 120)
        assert doc["phase"] == "promoted", doc["rollout"]["reason"]
        assert cube.state().slot("standby").bundle_id == old
        before = known_good(env.daemon)
        assert {old, new.bundle_id} <= set(before), before
        assert before[new.bundle_id]["source"] == "rollout"  # the controller vouched for it on promotion

        env.daemon.kill()  # SIGKILL: nothing runs on the way out
        assert env.daemon.proc is not None and env.daemon.proc.returncode == -9
        cfg = env.daemon.config
        with DaemonProcess(cfg, env.daemon.config_path, log=tmp_path / "daemon-restart.log") as again:
            again.start().wait_ready(90, verdicts=True)
            after = known_good(again)
            # the same rows, not re-added: the old bundle is the standby now, and nothing vouches for a standby
            assert {b: after[b] for b in before} == before, (before, after)
            assert again.client.status()["rollout"]["phase"] == "promoted"
            assert again.stop() == 0, again.tail()
        import duckdb

        with duckdb.connect(str(cfg.resolve(cfg.store.path)), read_only=True) as db:
            rows = db.execute("SELECT bundle_id, count(*) FROM known_good GROUP BY bundle_id").fetchall()
        assert dict(rows).keys() >= {old, new.bundle_id} and all(n == 1 for _, n in rows), rows
