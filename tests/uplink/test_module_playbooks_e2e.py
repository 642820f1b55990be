"""The hub's signed playbooks, gates and rollout policy run in the live daemon; safe mode falls back to the
local set. Real hub, real twin, real daemon."""

from __future__ import annotations

import json

import duckdb
import httpx
import pytest

from samantha.api.client import auth_headers
from tests.sre.kit import wait_for
from tests.uplink.kit import hub_twin_daemon, publish_module

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

# a gate no host passes (memory use at or below 0.5%) and the playbook that alerts on it
FLEET = {
    "gates": [{"kind": "threshold", "name": "fleet-memory-tight", "metric": "host_memory_used_percent",
               "aggregate": "mean", "op": "<=", "value": 0.5, "window": 10}],
    "playbooks": [{"name": "fleet-memory", "version": 3, "owner": "fleet-sre@example.com",
                   "when": {"any": ["fleet-memory-tight"], "for": 2},
                   "then": [{"action": "alert", "severity": "warning"}],
                   "limits": {"cooldown": "10m", "max_actions_per_hour": 2}}],
    "rollout_policy": {"name": "fleet-cautious", "version": 2},
}


def test_module_playbooks_run_in_the_daemon_and_safe_mode_restores_the_local_set(tmp_path):
    with hub_twin_daemon(tmp_path, "cube-pb") as (hub_url, hub_key_path, operator, _, d):
        local = {p["name"] for p in d.client.status()["playbooks"]}
        assert "active-fast" in local and d.client.status()["playbooks_source"] == "local"

        publish_module(tmp_path, hub_url, hub_key_path, 1, "12s", operator, body_extra=FLEET)
        s = wait_for(lambda: (x := d.client.status())["playbooks_source"] == "policy module" and x, 20,
                     "the module's playbooks in force")
        assert [p["name"] for p in s["playbooks"]] == ["fleet-memory"]
        wait_for(lambda: "fleet-memory-tight" in {v["gate"] for v in d.client.status()["verdicts"]}, 10,
                 "the module's own gate evaluated")

        # the module's playbook acts: its gate fails on every host, so it opens an incident and alerts
        inc = wait_for(lambda: [i for i in d.client.incidents() if "fleet-memory" in i["playbooks"]], 30,
                       "an incident from the module's playbook")[0]
        assert "fleet-memory-tight" in inc["gates"]

        # the module expires: safe mode runs the conservative local set again
        s = wait_for(lambda: (x := d.client.status())["playbooks_source"] == "local" and x, 40,
                     "the local playbooks back in safe mode")
        assert {p["name"] for p in s["playbooks"]} == local
        assert s["uplink"]["safe_mode"] is True
        assert httpx.get(f"{d.url}/v1/audit/verify", timeout=10, headers=auth_headers(d.config)).status_code == 200
        assert d.stop() == 0

    # each switch is on the signed audit record, with what came into force
    con = duckdb.connect(str(tmp_path / "state" / "telemetry.duckdb"), read_only=True)
    try:
        rows = [json.loads(r[0]) for r in con.execute(
            "SELECT payload FROM audit WHERE kind = 'policy_adopted' ORDER BY seq").fetchall()]
    finally:
        con.close()
    assert [(r["source"], sorted(r["playbooks"]), r["rollout_policy"]) for r in rows] == [
        ("policy module v1", ["fleet-memory"], "fleet-cautious"), ("local playbooks", sorted(local), "default")]
