"""The real daemon beside the real twin and a real hub: signed desired state end to end.

A module is applied; a tampered one and an older one are refused with an alert; expiry
puts the Cube in safe mode (the twin's own flag too); a newer module restores normal
mode; an operator override signed with the module's `override` role does too; an
approval decision relayed by the hub for an unknown request, and a forged one, are refused
(tests/uplink/test_relayed_approval_e2e.py resumes a real escalated experiment).
"""

from __future__ import annotations

import json
import re
import time

import httpx
import pytest

from samantha.api.client import auth_headers
from samantha.core.signing import KeyPair
from samantha.uplink.policy_module import sign_module
from tests.sre.kit import wait_for
from tests.uplink.kit import cli, hub_twin_daemon, publish_module

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]
CUBE = "cube-e2e"


def test_policy_module_safe_mode_and_relayed_decisions_through_the_daemon(tmp_path):
    with hub_twin_daemon(tmp_path, CUBE) as (hub_url, hub_key_path, operator, twin, d):
        hub_key = KeyPair.load(hub_key_path)

        def st():
            return httpx.get(f"{d.url}/v1/uplink/status", timeout=10, headers=auth_headers(d.config)).json()

        # a module arrives and is applied
        publish_module(tmp_path, hub_url, hub_key_path, 1, "8s", operator)
        wait_for(lambda: st()["policy"].get("version") == 1, 20, "module v1 applied")
        assert st()["safe_mode"]["safe"] is False

        # a tampered module is refused, the alert fires, v1 stays in force
        forged = sign_module({"version": 2, "issued_at": time.time(), "expires_at": time.time() + 3600}, hub_key)
        forged["expires_at"] += 86400 * 365
        httpx.put(f"{hub_url}/v1/policy", json=forged, timeout=10).raise_for_status()
        s = wait_for(lambda: (x := st())["last_offer"] and x["last_offer"].get("code") == "bad_signature" and x, 20,
                     "tampered module refused")
        assert s["policy"]["version"] == 1
        assert any(a["name"] == "samantha_policy_module_refused" for a in s["alerts"])

        # v1 expires: safe mode, on the Cube too, shown by `samantha status`
        s = wait_for(lambda: (x := st())["safe_mode"]["safe"] and x, 30, "safe mode after expiry")
        assert "expired" in s["safe_mode"]["reason"]
        wait_for(lambda: twin.cube.state().safe_mode, 10, "the twin in safe mode")
        assert any(a["name"] == "samantha_safe_mode" for a in s["alerts"])
        assert {g["gate"]: g["status"] for g in s["drift"]}["policy-module-expiry"] == "fail", s["drift"]
        out = cli(["status"], tmp_path / "samantha.yaml")
        assert "SAFE MODE" in out.stdout, out.stdout + out.stderr
        # the bundle-expiry drift SLO reads the twin's signed bundle expiry (30 days) through the daemon's cycle
        left = re.search(r"active bundle expires in ([0-9.]+) h", out.stdout)
        assert left and 700 < float(left.group(1)) <= 720, out.stdout
        # the uplink commands go through the running daemon as its local operator (token), not unauthenticated
        up = cli(["uplink", "status", "--json"], tmp_path / "samantha.yaml")
        assert up.returncode == 0 and json.loads(up.stdout)["safe_mode"]["safe"] is True, up.stdout + up.stderr
        pol = cli(["uplink", "policy", "--json"], tmp_path / "samantha.yaml")
        assert pol.returncode == 0 and json.loads(pol.stdout)["version"] == 1, pol.stdout + pol.stderr
        assert {g["gate"]: g["status"] for g in s["drift"]}["bundle-expiry"] == "pass", s["drift"]

        # a valid newer module restores normal mode
        publish_module(tmp_path, hub_url, hub_key_path, 3, "1h", operator)
        s = wait_for(lambda: (x := st())["policy"].get("version") == 3 and not x["safe_mode"]["safe"] and x, 20,
                     "normal mode with v3")
        assert "v3" in s["safe_mode"]["left_because"]
        wait_for(lambda: not twin.cube.state().safe_mode, 10, "the twin out of safe mode")

        # a downgrade (older version, validly signed) is refused; v3 stays
        publish_module(tmp_path, hub_url, hub_key_path, 2, "1h", operator, "--force")
        s = wait_for(lambda: (x := st())["last_offer"].get("code") == "rollback" and x, 20, "downgrade refused")
        assert s["policy"]["version"] == 3

        # expiry again, then an operator override (role `override`) leaves safe mode
        publish_module(tmp_path, hub_url, hub_key_path, 4, "10s", operator)
        wait_for(lambda: st()["policy"].get("version") == 4, 20, "module v4 applied")
        wait_for(lambda: st()["safe_mode"]["safe"], 30, "safe mode after v4 expired")
        op_key = tmp_path / "ana.key"
        operator.save(op_key)
        r = cli(["hub", "override", "--cube", CUBE, "--key", str(op_key), "--hub", hub_url, "--operator", "ana",
                 "--reason", "site visit, bundle checked by hand", "--valid-for", "1h"])
        assert r.returncode == 0, r.stderr
        s = wait_for(lambda: (x := st())["safe_mode"]["safe"] is False and x, 20, "override leaves safe mode")
        assert "override by ana" in s["safe_mode"]["left_because"]

        # approval decisions relayed by the hub: a signed one is accepted, a forged one refused
        r = cli(["hub", "decide", "req-123", "--cube", CUBE, "--approve", "--key", str(op_key), "--hub", hub_url,
                 "--operator", "ana"])
        assert r.returncode == 0, r.stderr
        stranger = tmp_path / "stranger.key"
        KeyPair.generate().save(stranger)
        r = cli(["hub", "decide", "req-124", "--cube", CUBE, "--approve", "--key", str(stranger), "--hub", hub_url,
                 "--operator", "mallory"])
        assert r.returncode == 0, r.stderr

        def decisions():
            got = httpx.get(f"{d.url}/v1/uplink/decisions", timeout=10, headers=auth_headers(d.config)).json()["decisions"]
            return {x["doc"].get("request_id"): x for x in got if x["kind"] == "samantha/approval-decision"}

        got = wait_for(lambda: len(x := decisions()) == 2 and x, 20, "both decisions received")
        # validly signed, but nothing waits under that id: refused by the queue, with the reason
        assert got["req-123"]["status"] == "refused" and "unknown_approval" in got["req-123"]["reason"]
        assert got["req-124"]["status"] == "refused" and "signature" in got["req-124"]["reason"]
        # every step is in the Cube's signed audit log, which still verifies
        assert httpx.get(f"{d.url}/v1/audit/verify", timeout=10, headers=auth_headers(d.config)).status_code == 200
    assert json.loads((tmp_path / "state" / "uplink" / "safe_mode.json").read_text())["safe"] is False
