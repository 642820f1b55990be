"""Plans with Constraints on real NATS (a 3-node root cluster, a regional leaf, the Parquet writer) and a real
daemon beside the real twin, whose uplink reaches the hub only through the leaf.

A policy module published at the hub carries two Plans: roll out v2 in a maintenance window that opens a few
seconds from now (UTC, HH:MM:SS), on a Cube whose active bundle is v1 and whose Samantha is at least 0.1.0;
and roll out v3 on Samantha >= 99. The Cube reports why each waits (the window, with when it opens; the
version), starts v2's rollout through the rollout controller once the window opens, never before, and v3's
Plan keeps waiting with its reason.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from samantha.core.signing import KeyPair, trust_public_key
from samantha.harness.hub_process import spawn_nats_hub
from samantha.harness.nats_process import Fleet
from tests.sre.kit import stopped_audit, twin_and_daemon, wait_for
from tests.uplink.kit import publish_module

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]
OPENS_IN_S = 20.0  # the module must reach the Cube (through the leaf) before the window opens


def hms(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S")


def test_a_plan_waits_for_its_maintenance_window_then_starts_its_rollout(tmp_path):
    hub_key, ana = KeyPair.generate(), KeyPair.generate()
    hub_key.save(hub_key_path := tmp_path / "hub.key")
    trust_public_key(hub_key.public, tmp_path / "state" / "keys" / "hub")
    with Fleet(tmp_path / "nats") as fleet, \
            spawn_nats_hub(tmp_path / "hub", fleet.root_urls, replicas=3) as _writer, \
            twin_and_daemon(tmp_path, rps=20, uplink={"hub_url": fleet.leaf_url("eu"), "cube_id": "cube-plan",
                                                       "region": "eu", "interval_s": 0.3}) as (twin, d):
        v1 = twin.cube.state().slot("active").bundle_id
        twin.bundle("v2", seed=4)
        twin.bundle("v3", seed=5)
        opens = time.time() + OPENS_IN_S
        window = {"start": hms(opens), "end": hms(opens + 3600)}
        plans = [{"id": "roll-v2", "bundle": "v2", "constraints": {
                      "window": window, "min_samantha_version": "0.1.0", "requires_active": v1[:12]}},
                 {"id": "roll-v3", "bundle": "v3", "constraints": {"min_samantha_version": "99"}}]
        publish_module(tmp_path, ",".join(fleet.root_urls), hub_key_path, 1, "1h", ana, body_extra={"plans": plans})

        def plan(pid: str):
            return next((p for p in d.client.status()["plans"] if p["id"] == pid), None)

        waiting = wait_for(lambda: (p := plan("roll-v2")) and p["status"] == "waiting" and p, 30, "v2 waits")
        assert time.time() < opens, "the module arrived after the window opened: the test proves nothing"
        assert [r.split(":")[0] for r in waiting["waiting"]] == ["window"], waiting
        assert abs(waiting["next_window_at"] - int(opens)) < 1.5, waiting
        assert d.client.status()["rollout"]["rollout"] is None  # nothing started while it waits

        started = wait_for(lambda: (p := plan("roll-v2")) and p["status"] == "started" and p, OPENS_IN_S + 30,
                           "v2's plan started when the window opened")
        assert started["started_at"] >= int(opens), (started, opens)
        ro = d.client.status()["rollout"]["rollout"]
        assert ro["request_id"] == "plan-roll-v2" and ro["id"] == started["rollout_id"], ro
        assert ro["bundle_ref"] == "v2" and ro["prior_active_bundle"] == v1, ro
        v3 = plan("roll-v3")
        assert v3["status"] == "waiting" and any(r.startswith("min_samantha_version: this Cube runs 0.1.0")
                                                 for r in v3["waiting"]), v3
        assert d.stop() == 0, d.tail()

    audit = stopped_audit(tmp_path / "state" / "telemetry.duckdb", "kind LIKE 'plan_%'")
    v2 = [(k, p["said"]) for k, p in audit if p["plan"] == "roll-v2"]
    assert v2[0] == ("plan_waiting", ["window"]) and v2[-1] == ("plan_started", []), v2
    assert ("plan_started", []) not in [(k, p["said"]) for k, p in audit if p["plan"] == "roll-v3"]
