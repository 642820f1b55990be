"""Early success on the real twin: a good canary passes its steps as soon as the evidence shows it within
the margin of the incumbent, instead of waiting every step's min_duration. Real twin and daemon."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from samantha.gates.rollout_policy import RolloutPolicy
from tests.rollout.kit import rollout_env
from tests.sre.kit import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]
STEP_S = 30.0


def test_good_rollout_promoted_early_with_early_success_on(tmp_path: Path) -> None:
    steps = [{"weight": w, "min_samples": 20, "min_duration": STEP_S} for w in (1, 5, 25, 50)]
    policy = RolloutPolicy(name="test-early", shadow={"enabled": True, "min_samples": 100, "min_duration": 20},
                           steps=[*steps, {"weight": 100, "min_samples": 20, "min_duration": 5}], soak=5,
                           early_success={"enabled": True})
    full = 20 + 4 * STEP_S + 5  # what the steps' min_durations alone take
    with rollout_env(tmp_path, policy, rps=200) as env:
        time.sleep(3)  # the incumbent's pre-rollout median
        new = env.twin.bundle("v2", seed=0, version="2")
        t0 = time.time()
        r = env.post("/v1/rollout/start", json={"bundle": "v2", "request_id": "req-early-1"})
        assert r.status_code == 200, r.text
        st = wait_for(lambda: (s := env.status())["phase"] in ("aborted", "promoted", "failed") and s, full + 30,
                      "the rollout to end")
        took = time.time() - t0
        rec = st["rollout"]
        assert st["phase"] == "promoted", rec["reason"]
        early = [v for v in rec["step_verdicts"] if v["status"] == "pass" and "early success" in v["reason"]]
        print(f"promoted in {took:.1f}s (min_durations alone: {full:.0f}s); early passes: "
              f"{[(v['step'], round(v['elapsed_s'], 1)) for v in early]}")
        assert early, [v["reason"] for v in rec["step_verdicts"] if v["status"] == "pass"]
        assert took < full * 0.75, f"promoted after {took:.0f}s, not much earlier than {full:.0f}s"
        assert env.twin.cube.state().slot("active").bundle_id == new.bundle_id
