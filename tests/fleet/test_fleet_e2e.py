"""The fleet on real NATS: a 3-node root cluster (streams R3), a regional leaf, the Parquet writer, and a
real daemon beside the real twin whose uplink reaches the hub only through the leaf.

Policy module v2 published at the root reaches the Cube through the leaf and is applied; an operator
override and an approval decision, relayed on the Cube's subject, are verified (the override applied, the
decision for an unknown request refused with its reason); a root node SIGKILLed while the daemon uploads
loses nothing and duplicates nothing in Parquet.
"""

from __future__ import annotations

import time

import httpx
import pytest

from samantha.api.client import auth_headers
from samantha.core.signing import KeyPair, trust_public_key
from samantha.harness.hub_process import spawn_nats_hub
from samantha.harness.nats_process import Fleet
from tests.sre.kit import twin_and_daemon, wait_for
from tests.uplink.kit import cli, cube_keys, hub_view, publish_module

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
CUBE = "cube-leaf"


def test_policy_down_through_the_leaf_and_a_root_node_killed_mid_upload(tmp_path):
    hub_key, ana = KeyPair.generate(), KeyPair.generate()
    hub_key.save(hub_key_path := tmp_path / "hub.key")
    ana.save(ana_path := tmp_path / "ana.key")
    trust_public_key(hub_key.public, tmp_path / "state" / "keys" / "hub")
    with Fleet(tmp_path / "nats") as fleet, \
            spawn_nats_hub(tmp_path / "hub", fleet.root_urls, replicas=3) as _writer, \
            twin_and_daemon(tmp_path, rps=20, uplink={"hub_url": fleet.leaf_url("eu"), "cube_id": CUBE,
                                                       "region": "eu", "interval_s": 0.3}) as (_twin, d):
        root = ",".join(fleet.root_urls)
        h = auth_headers(d.config)

        def st():
            return httpx.get(f"{d.url}/v1/uplink/status", timeout=10, headers=h).json()

        publish_module(tmp_path, root, hub_key_path, 1, "1h", ana)
        wait_for(lambda: st()["policy"].get("version") == 1, 40, "module v1 applied through the leaf")
        publish_module(tmp_path, root, hub_key_path, 2, "6s", ana)
        wait_for(lambda: st()["policy"].get("version") == 2, 40, "module v2 applied through the leaf")
        r = cli(["hub", "publish", str(tmp_path / "module-v1.yaml"), "--key", str(hub_key_path), "--hub", root])
        assert r.returncode == 2 and "holds version 2" in r.stderr + r.stdout  # a downgrade needs --force

        # v2 expires: safe mode; an override relayed on the Cube's subject is verified and applied
        wait_for(lambda: st()["safe_mode"]["safe"], 40, "safe mode after v2 expired")
        r = cli(["hub", "override", "--cube", CUBE, "--key", str(ana_path), "--hub", root, "--operator", "ana",
                 "--reason", "fleet e2e", "--valid-for", "1h"])
        assert r.returncode == 0, r.stderr + r.stdout
        s = wait_for(lambda: (x := st())["safe_mode"]["safe"] is False and x, 40, "override leaves safe mode")
        assert "override by ana" in s["safe_mode"]["left_because"]
        r = cli(["hub", "decide", "req-404", "--cube", CUBE, "--approve", "--key", str(ana_path), "--hub", root,
                 "--operator", "ana"])
        assert r.returncode == 0, r.stderr + r.stdout

        def decisions():
            got = httpx.get(f"{d.url}/v1/uplink/decisions", timeout=10, headers=h).json()["decisions"]
            return [x for x in got if x["kind"] == "samantha/approval-decision"]

        (dec,) = wait_for(decisions, 40, "the decision pulled")
        assert dec["status"] == "refused" and dec["source"] == "hub" and dec["reason"], dec  # verified, no such request

        # a root node dies while the daemon keeps uploading: the leaf and the writer move to the others
        wait_for(lambda: st()["last_sync_at"], 40, "a first upload")
        fleet.nodes[0].kill()
        t_kill = time.time()
        wait_for(lambda: (x := st())["last_sync_at"] and x["last_sync_at"] > t_kill + 3
                 and x["outbox"]["pending_batches"] == 0, 90, "uploads resumed after the kill")
        assert d.stop() == 0, d.tail()
        audit = cube_keys(d.config, "audit")
        view = wait_for(lambda: (v := hub_view(tmp_path / "hub")) and set(v["keys"].get("audit", [])) >= audit and v,
                        60, "every audit record in Parquet")
        assert set(view["keys"]["audit"]) == audit
        assert view["stats"]["duplicates"] == 0, view["stats"]
        out = cli(["hub", "stats", "--data-dir", str(tmp_path / "hub"), "--json"])
        assert out.returncode == 0 and '"duplicates": 0' in out.stdout, out.stdout + out.stderr
