"""A Recall on real NATS: a 3-node root cluster, a regional leaf, the Parquet writer, a real daemon beside the
real twin whose uplink reaches the hub only through the leaf.

The Cube serves v2 with v1 (vouched for by the daemon) in standby. A Recall of v2 signed by a key the Cube
does not trust is refused with its reason (audit, alert) and changes nothing. The real one, published at the
root with `samantha hub recall` while the Cube's regional leaf is down, reaches it when the leaf returns,
flips the Cube back to v1 through the daemon's action path, quarantines v2, and `samantha hub recall-status`
shows the Cube applied it, with its time. The Recall stays in the stream and
is read again every round, and a second Recall of v2 arrives: neither acts again.
"""

from __future__ import annotations

import json
import time

import httpx
import pytest

from samantha.api.client import auth_headers
from samantha.core.signing import KeyPair, trust_public_key
from samantha.harness.hub_process import spawn_nats_hub
from samantha.harness.nats_process import Fleet
from tests.sre.kit import load_and_flip, stopped_audit, twin_and_daemon, wait_for
from tests.uplink.kit import cli

pytestmark = [pytest.mark.slow, pytest.mark.timeout(480)]
CUBE = "cube-recall"


def test_a_recall_of_the_active_bundle_flips_the_cube_to_last_known_good_and_the_hub_shows_it(tmp_path):
    hub_key, mallory = KeyPair.generate(), KeyPair.generate()
    hub_key.save(hub_key_path := tmp_path / "hub.key")
    mallory.save(mallory_path := tmp_path / "mallory.key")
    trust_public_key(hub_key.public, tmp_path / "state" / "keys" / "hub")
    hub_root = tmp_path / "hub"
    with Fleet(tmp_path / "nats") as fleet, \
            spawn_nats_hub(hub_root, fleet.root_urls, replicas=3) as _writer, \
            twin_and_daemon(tmp_path, rps=20, uplink={"hub_url": fleet.leaf_url("eu"), "cube_id": CUBE,
                                                       "region": "eu", "interval_s": 0.3}) as (twin, d):
        root = ",".join(fleet.root_urls)
        h = auth_headers(d.config)

        def st():
            return httpx.get(f"{d.url}/v1/uplink/status", timeout=10, headers=h).json()

        def known_good():
            return {r["bundle_id"] for r in d.client.status()["known_good"]}

        def status(bundle: str):
            r = cli(["hub", "recall-status", bundle, "--data-dir", str(hub_root), "--json"])
            assert r.returncode == 0, r.stderr + r.stdout
            return json.loads(r.stdout)

        v1 = twin.cube.state().slot("active").bundle_id
        wait_for(lambda: v1 in known_good(), 40, "v1 vouched for by the daemon")
        load_and_flip(twin, "v2", "recall")
        v2 = twin.cube.state().slot("active").bundle_id
        assert v2 != v1 and twin.cube.state().slot("standby").bundle_id == v1
        # the hub knows a Cube once it reported anything; its first batch is the first complete rollup minute
        # (up to a minute and a settle time after the traffic started, whatever the wall clock's phase)
        wait_for(lambda: st()["outbox"]["acked_seq"] >= 1, 150, "the Cube reported through the leaf")
        wait_for(lambda: [n["cube"] for n in status(v2)["not_reached"]] == [CUBE], 40,
                 "known at the hub, not reached yet")

        # signed by a key the Cube does not trust: refused with the reason, alerted; v2 keeps serving
        r = cli(["hub", "recall", v2, "--key", str(mallory_path), "--hub", root, "--reason", "forged"])
        assert r.returncode == 0, r.stderr + r.stdout  # the hub relays; the Cube decides
        wait_for(lambda: any(a["name"] == "samantha_recall_refused" for a in st()["alerts"]), 40, "forgery refused")
        assert twin.cube.state().slot("active").bundle_id == v2 and not twin.cube.state().is_quarantined(v2)

        # the root's Recall, published while the Cube is cut off (its regional leaf down): it waits in the
        # stream; once the leaf is back the Cube flips to last-known-good v1, quarantines v2, reports "applied"
        leaf = fleet.leaves["eu"]
        leaf.stop()
        t0 = time.time()
        r = cli(["hub", "recall", v2, "--key", str(hub_key_path), "--hub", root, "--reason", "NaN outputs", "--json"])
        assert r.returncode == 0, r.stderr + r.stdout
        wait_for(lambda: st()["consecutive_failures"] >= 3, 30, "the Cube's rounds fail while its leaf is down")
        assert twin.cube.state().slot("active").bundle_id == v2 and st()["recalls"] == []
        leaf.start().wait_ready(30)
        wait_for(lambda: (c := twin.cube.state()).slot("active").bundle_id == v1 and c.is_quarantined(v2), 40,
                 "flipped to v1 and v2 quarantined")
        [mine] = st()["recalls"]
        assert mine["bundle_id"] == v2 and mine["was_active"] and mine["applied_at"] >= t0, mine
        assert [a["kind"] for a in mine["outcome"]["actions"]] == ["flip", "quarantine"], mine
        s = wait_for(lambda: (x := status(v2))["applied"] and x, 60, "the hub shows the recall applied")
        assert [(a["cube"], a["was_active"]) for a in s["applied"]] == [(CUBE, True)], s
        assert abs(s["applied"][0]["applied_at"] - mine["applied_at"]) < 1e-3 and s["not_reached"] == [], s
        text = cli(["hub", "recall-status", v2, "--data-dir", str(hub_root)])
        assert text.returncode == 0 and f"applied  {CUBE}" in text.stdout, text.stdout

        # the recall is read again every round, and a second recall of v2 arrives: nothing acts twice
        r = cli(["hub", "recall", v2, "--key", str(hub_key_path), "--hub", root, "--reason", "again"])
        assert r.returncode == 0, r.stderr + r.stdout
        rounds = st()["last_sync_at"]
        wait_for(lambda: st()["last_sync_at"] > rounds + 2, 40, "more rounds")
        recall_flips = [a for a in d.client.actions(kind="flip") if a["id"].startswith("recall-")]
        assert len(recall_flips) == 1 and recall_flips[0]["requested_by"] == "operator", recall_flips
        assert twin.cube.state().slot("active").bundle_id == v1
        assert len(st()["recalls"]) == 1

        # bad input at the CLI: a bundle id that is not one
        bad = cli(["hub", "recall", "v2", "--key", str(hub_key_path), "--hub", root, "--reason", "x"])
        assert bad.returncode == 2 and "bundle_id" in bad.stdout + bad.stderr
        assert httpx.get(f"{d.url}/v1/audit/verify", headers=h, timeout=10).status_code == 200
        assert d.proc is not None and d.proc.poll() is None
        assert d.stop() == 0, d.tail()

    audit = stopped_audit(tmp_path / "state" / "telemetry.duckdb", "kind LIKE 'recall_%'")
    assert [(k, p["bundle_id"]) for k, p in audit] == [("recall_refused", v2), ("recall_applied", v2)], audit
    assert audit[0][1]["reason"].startswith("signature: unknown signing key"), audit[0]
