"""Resource regressions on the real twin: a canary whose process leaks memory (10 MB/s) and one that burns
CPU per inference are aborted before promotion and quarantined. The slot processes report their own
resident memory, CPU time and inferences served; the resource gates judge them against the incumbent."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from samantha.gates.engine import GateEngine
from samantha.gates.registry import GateRegistry
from tests.rollout.kit import rollout_env, short_policy
from tests.sre.kit import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


class _Reader:
    def __init__(self, con) -> None:  # type: ignore[no-untyped-def]
        self.con = con

    def read_arrow(self, sql, params=None):  # type: ignore[no-untyped-def]
        return self.con.sql(sql, params=params or []).to_arrow_table()


@pytest.mark.parametrize(("knob", "value", "gate"), [("leak_mb_per_s", 10.0, "canary-memory-growth"),
                                                     ("cpu_burn", 5.0, "canary-cpu-per-inference")])
def test_resource_hungry_canary_aborted_and_quarantined(tmp_path: Path, knob: str, value: float, gate: str) -> None:
    with rollout_env(tmp_path, short_policy(shadow=True, step_s=15.0, soak_s=120.0), rps=100) as env:
        cube = env.twin.cube
        time.sleep(3)  # incumbent samples before the rollout
        bad = env.twin.bundle("v2-hungry", seed=0, version="2", **{knob: value})
        t0 = time.time()
        r = env.post("/v1/rollout/start", json={"bundle": "v2-hungry", "request_id": f"req-{knob}"})
        assert r.status_code == 200, r.text
        st = wait_for(lambda: (s := env.status())["phase"] in ("aborted", "promoted", "failed") and s, 150,
                      "the rollout to end")
        took = time.time() - t0
        rec = st["rollout"]
        assert st["phase"] == "aborted", rec["reason"]
        assert took <= 120, f"aborted after {took:.0f}s (target 120 s)"
        # a CPU burn in the request path is also a latency regression: whichever gate calls it first aborts
        assert any(g in rec["reason"] for g in (gate, "canary-latency")), rec["reason"]
        state = wait_for(lambda: (s := cube.state()).is_quarantined(bad.bundle_id) and s, 10, "quarantine")
        assert state.weights.standby == 0 and not state.shadow
        assert state.slot("active").bundle_version == "1"
        t_end = time.time()
        with env.stopped_db() as db:  # the resource gate over what the slot processes reported, after the fact
            engine, g = GateEngine(_Reader(db)), GateRegistry.with_builtins().get(gate)
            # up to the last sample recorded: the slots kept reporting until the daemon stopped, after t_end
            last = max(t_end, db.sql("SELECT max(ts) FROM samples").fetchall()[0][0] or t_end)
            vs = [engine.evaluate([g], t, canary_bundle=bad.bundle_id)[0] for t in np.arange(t0 + 0.5, last + 0.5, 0.5)]
        failing = [v for v in vs if v.status == "fail"]
        # the resource gate never passes the hungry canary; when the latency gate aborted first, the canary may
        # not have served the inferences the resource gate needs, so it may stay inconclusive
        assert not [v for v in vs if v.status == "pass"], [v.reason for v in vs if v.status == "pass"][:3]
        if gate in rec["reason"] or not vs or "canary-latency" not in rec["reason"]:
            assert failing, (rec["reason"], [v.reason for v in vs][-5:])
        first = f"+{failing[0].ts - t0:.1f}s: {failing[0].reason}" if failing else "never (inconclusive)"
        print(f"{knob}={value}: aborted after {took:.1f}s by {rec['reason'][:120]}; {gate} failing from {first}")
