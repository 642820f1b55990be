"""The serving slot slower than its own recent past: flipped to a faster standby within 5 s; when both
slots are slow (a host-level slowdown), alerted and held, never flipped. Real twin (latency toxics in the
fault proxy in front of each slot), real daemon with the shipped playbooks, real DuckDB."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from samantha.cube.proxy_client import ProxyClient
from tests.sre.kit import flips, twin_and_daemon, wait_for

SHIPPED = Path(__file__).resolve().parents[2] / "playbooks"
FLIP_TARGET_S = 5.0


def _proxy(twin) -> ProxyClient:  # type: ignore[no-untyped-def]
    return ProxyClient(f"http://{twin.st['host']}:{twin.st['ports']['proxy_api_port']}")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_active_latency_flipped_to_faster_standby_and_host_slowdown_alerted_without_flip(tmp_path: Path) -> None:
    with twin_and_daemon(tmp_path, playbooks=SHIPPED) as (twin, daemon), _proxy(twin) as proxy:
        wait_for(lambda: daemon.client.status()["verdicts"], 30, "first gate verdicts")
        # the CUSUM needs the active slot's own past: 30 s of clean traffic before the tested window
        wait_for(lambda: any(v["gate"] == "active-latency-cusum" and v["status"] == "pass"
                             for v in daemon.client.status()["verdicts"]), 90, "active-latency-cusum passing")
        assert flips(daemon) == []
        before = twin.cube.state()
        slow = before.active

        # +100 ms on the active slot's path only: the standby (the same known-good bundle) stays fast
        t0 = time.time()
        proxy.add_toxic(f"slot-{slow.lower()}", "latency", {"latency": 100}, name="slow-active", ttl_s=120)
        flip = wait_for(lambda: [a for a in flips(daemon) if a["status"] in ("done", "verified")], 30,
                        "a flip away from the slow active slot")[0]
        took = flip["created_ts"] - t0
        assert flip["playbook"] == "active-latency"
        assert twin.cube.state().active != slow
        assert took <= FLIP_TARGET_S, f"flip {took:.2f}s after the fault (target {FLIP_TARGET_S}s)"
        inc = daemon.client.get(f"/v1/incidents/{flip['incident_id']}")
        assert {"active-latency-cusum", "active-slower-than-standby"} <= set(inc["gates"])
        proxy.remove_toxic(f"slot-{slow.lower()}", "slow-active")

        # the same slowdown on both paths: a host problem; a flip would not help
        wait_for(lambda: time.time() - flip["created_ts"] > 35, 60, "the flip out of the tested window")
        # after the flip the slow path is the standby's, and the CUSUM window still holds its pre-flip rows:
        # that is no host slowdown (evidence predating the flip is refused)
        assert not [a for a in daemon.client.actions() if a["playbook"] == "host-slowdown"]
        gen = twin.cube.state().generation
        t1 = time.time()
        for s in ("a", "b"):
            proxy.add_toxic(f"slot-{s}", "latency", {"latency": 100}, name="slow-host", ttl_s=120)
        alert = wait_for(lambda: [a for a in daemon.client.actions(kind="alert")
                                  if a["playbook"] == "host-slowdown"], 30, "a host-slowdown alert")[0]
        assert alert["created_ts"] - t1 <= 10
        time.sleep(5)  # the flip playbook had the same evidence for as long: it must stay silent
        assert len(flips(daemon)) == 1 and twin.cube.state().generation == gen
        holds = daemon.client.actions(kind="hold_rollout")
        assert any(h["playbook"] == "host-slowdown" for h in holds)
