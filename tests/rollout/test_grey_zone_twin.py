"""A grey-zone canary on the real twin and daemon: a 1% step on a quiet Cube never gathers the evidence its
policy asks for, so the rollout holds and the item appears in the daemon's approval queue (its chaos SQLite
file, its HTTP API); an operator's signed approval advances it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from samantha.chaos.approvals import make_decision
from samantha.core.operators import add_operator
from samantha.core.signing import KeyPair
from samantha.gates.rollout_policy import RolloutPolicy
from samantha.rollout.escalation import ROLLOUT_HOLD_KIND
from tests.rollout.kit import rollout_env
from tests.sre.kit import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def test_grey_zone_canary_is_held_and_appears_in_the_approval_queue(tmp_path: Path) -> None:
    # 1% of 40 rps is ~0.4 canary requests a second: 2000 samples are out of reach, so step 1 stays inconclusive
    steps = [{"weight": 1, "min_samples": 2000, "min_duration": 2},
             *({"weight": w, "min_samples": 20, "min_duration": 2} for w in (5, 25, 50, 100))]
    policy = RolloutPolicy(name="test-grey", shadow={"enabled": False}, steps=steps, soak=2,
                           grey_zone={"after_s": 3})
    with rollout_env(tmp_path, policy, rps=40, max_step_s=20) as env:
        env.twin.bundle("v2", seed=0, version="2")
        r = env.post("/v1/rollout/start", json={"bundle": "v2", "request_id": "req-grey-1"})
        assert r.status_code == 200, r.text
        st = wait_for(lambda: (s := env.status())["rollout"]["approval_id"] and s, 40, "the grey-zone question")
        rec = st["rollout"]
        assert st["phase"] == "step" and rec["step"] == 0 and st["weight"] == 1, rec["reason"]
        aid = rec["approval_id"]
        items = env.daemon.client.get("/v1/chaos/approvals?status=pending")["approvals"]
        [item] = [a for a in items if a["id"] == aid]
        assert item["proposal"]["kind"] == ROLLOUT_HOLD_KIND and item["proposal"]["params"]["rollout_id"] == rec["id"]
        assert "canary samples" in item["preflight"]["reasons"][0]["message"]

        time.sleep(22)  # past the stall limit (max_step_s 20 + min_duration): still held, not aborted
        st = env.status()
        assert st["phase"] == "step" and st["rollout"]["step"] == 0 and st["rollout"]["approval_id"] == aid

        key = KeyPair.generate()
        add_operator(Path(env.daemon.config.data_dir) / "operators.yaml", "alice", "approver", key.public,
                     time.time() + 3600)
        doc = make_decision(aid, "approve", item["proposal"]["key"], key, operator="alice", now=time.time())
        r = env.post(f"/v1/chaos/approvals/{aid}/approve", json=doc)
        assert r.status_code == 200 and r.json()["approval"]["status"] == "approved", r.text
        st = wait_for(lambda: (s := env.status())["rollout"]["step"] != 0 and s, 20, "the approved step to advance")
        assert st["rollout"]["step"] == 1 and st["phase"] == "step", st["rollout"]["reason"]
        assert "approved by an operator" in st["rollout"]["step_verdicts"][-1]["reason"]
