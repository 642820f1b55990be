"""A real rollout on the real twin, driven by a real `samantha run` daemon, reaches a real hub as a
DORA fact (Parquet under cube=/day=) and shows in `samantha hub dora`; a daemon restart sends it
no second time."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from samantha.harness.hub_process import spawn_hub
from samantha.hub.storage import HubStorage
from tests.rollout.kit import rollout_env, short_policy
from tests.sre.kit import wait_for
from tests.uplink.kit import cli

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
CUBE = "cube-dora"


def _hub_dora(root: Path) -> dict:
    out = cli(["hub", "dora", "--data-dir", str(root), "--since", "1h", "--json"])
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _stored(root: Path, kind: str) -> dict:
    hub = HubStorage(root)
    try:
        return hub.fleet_stats()["kinds"].get(kind, {})
    finally:
        hub.close()


def test_a_promoted_rollout_reaches_the_hub_and_its_fleet_dora(tmp_path: Path) -> None:
    root = tmp_path / "hub"
    with spawn_hub(root) as hub, \
            rollout_env(tmp_path, short_policy(shadow=False, step_s=1.0, soak_s=2.0), rps=150,
                        uplink={"hub_url": hub.value, "cube_id": CUBE, "interval_s": 0.5,
                                "backoff_initial_s": 0.2, "backoff_max_s": 1.0}) as env:
        time.sleep(2)  # incumbent traffic before the rollout
        new = env.twin.bundle("v2", seed=0, version="2")  # same weights, new release: a good rollout
        r = env.post("/v1/rollout/start", json={"bundle": "v2", "request_id": "req-dora-1"})
        assert r.status_code == 200, r.text
        def ended() -> dict | bool:
            return (s := env.status())["phase"] in ("promoted", "aborted", "failed") and s

        try:
            st = wait_for(ended, 60, "rollout ended")
        except AssertionError:  # gates left inconclusive by a loaded machine: an operator abort is final too
            r = env.post("/v1/rollout/abort", json={"reason": "test: took too long"})
            assert r.status_code in (200, 409), r.text  # 409: it ended meanwhile
            st = wait_for(ended, 30, "rollout aborted")
        rec = st["rollout"]  # a good bundle, but on a loaded machine it may still be aborted: either outcome
        promoted = st["phase"] == "promoted"  # must reach the hub as it happened

        doc = wait_for(lambda: (d := _hub_dora(root))["cubes"] == [CUBE] and d, 60, "the fact at the hub")
        files = list((root / "reported" / "rollouts" / f"cube={CUBE}").glob("day=*/*.parquet"))
        assert files, "rollout facts stored under cube=/day="
        c = doc["per_cube"][CUBE]
        assert c["deployment_frequency"]["bundles_promoted"] == int(promoted)
        assert c["change_failure_rate"] == {"rate": 0.0 if promoted else 1.0, "failed": int(not promoted), "total": 1,
                                            "by_phase": {st["phase"]: 1}}
        if promoted:
            (b,) = c["lead_time"]["per_bundle"]
            assert b["rollout"] == rec["id"] and rec["bundle_id"] == new.bundle_id
            # lead time = bundle created -> promoted here: delivery before the Cube started it, and on the Cube
            assert b["on_cube_s"] == pytest.approx(rec["ended_at"] - rec["started_at"], abs=1e-3)
            assert b["lead_time_s"] == pytest.approx(b["on_cube_s"] + b["disconnected_s"], abs=1e-3)
            assert 0 <= b["disconnected_s"] < 120  # the bundle was built seconds before
        # the hub's numbers for this Cube are the ones the Cube computes from its own records
        local = json.loads(cli(["dora", "--since", "1h", "--json"], tmp_path / "samantha.yaml").stdout)
        for k in ("deployment_frequency", "change_failure_rate"):
            assert {x: v for x, v in c[k].items() if x != "per_day"} == \
                {x: v for x, v in local[k].items() if x != "per_day"}, k
        assert [r["ref"] for r in c["mttr"]["recoveries"] if r["source"] == "rollout"] == \
            [r["ref"] for r in local["mttr"]["recoveries"] if r["source"] == "rollout"]

        # a restart re-derives the same final fact from the daemon's records: it is not queued again
        assert env.daemon.stop() == 0, env.daemon.tail()
        t_restart = time.time()
        env.daemon.start().wait_ready(90)

        def synced_after_restart() -> bool:
            s = env.daemon.client.get("/v1/uplink/status")
            return bool(s["last_sync_at"] and s["last_sync_at"] > t_restart and s["outbox"]["pending_batches"] == 0)

        wait_for(synced_after_restart, 60, "a full sync after the restart")
        stats = _stored(root, "rollouts")
        assert stats["records"] == 1 and stats["duplicates"] == 0, stats
        assert _hub_dora(root)["per_cube"][CUBE]["change_failure_rate"]["total"] == 1
