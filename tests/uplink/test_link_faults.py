"""Cube -> fault proxy -> hub, all real processes: a flapping link, 500s, resets, a link dying
mid-upload, and an uploader process killed with SIGKILL mid-batch. Nothing lost, nothing twice."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import httpx
import pytest

from samantha.harness.bench.offline import Flapper
from samantha.uplink.local import local_service
from tests.uplink.kit import cli, cube_config, cube_keys, hub_behind_proxy, hub_view, seed, write_config

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def _queued(cfg) -> dict[str, int]:
    with local_service(cfg) as svc:
        svc.tick(sync=False)  # collect into the outbox; no hub contact
        return {k: v["records"] for k, v in svc.outbox.stats()["pending_by_kind"].items()}


def _assert_exactly_once(cfg, hub_root, queued: dict[str, int]) -> None:
    view = hub_view(hub_root)
    assert view["stats"]["duplicates"] == 0
    for kind, n in queued.items():
        # every queued record arrived (a later tick may have queued newer minutes too); none twice
        assert len(view["keys"].get(kind, [])) >= n, kind
    assert set(view["keys"]["audit"]) == cube_keys(cfg, "audit")


def test_flapping_link_with_500s_and_resets_loses_and_duplicates_nothing(tmp_path):
    with hub_behind_proxy(tmp_path / "hub") as (_, link, proxy):
        cfg = cube_config(tmp_path, link, batch_span_s=600)
        seed(cfg, hours=6)
        queued = _queued(cfg)
        assert queued["requests_1m"] >= 300 and queued["audit"] == 30
        proxy.add_toxic("hub", "http_error", {"status_code": 500}, toxicity=0.2, name="e500")
        proxy.add_toxic("hub", "reset_peer", {"timeout": 0}, toxicity=0.1, name="rst")
        failures, done = 0, False
        with local_service(cfg) as svc, Flapper(proxy, "hub", seed=11, first_cut_s=0.0) as flap:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                out = svc.force_sync(max_seconds=10)["sync"]
                if out["ok"] and out["remaining"] == 0:
                    done = True
                    break
                failures += not out["ok"]
                time.sleep(0.02)
            st = svc.status()
        assert done, st
        assert failures > 0 and flap.cuts > 0  # the link really failed under the uploads
        assert st["outbox"]["pending_batches"] == 0 and st["consecutive_failures"] == 0
    _assert_exactly_once(cfg, tmp_path / "hub", queued)


def test_link_dying_mid_upload_stores_nothing_partial(tmp_path):
    with hub_behind_proxy(tmp_path / "hub") as (hub, link, proxy):
        cfg = cube_config(tmp_path, link, batch_span_s=600)
        seed(cfg, hours=2)
        queued = _queued(cfg)
        proxy.add_toxic("hub", "limit_data", {"bytes": 1500}, stream="upstream", name="cut")
        with local_service(cfg) as svc:
            first = svc.force_sync()["sync"]
            assert not first["ok"] and first["sent"] == 0
            assert svc.status()["next_attempt_at"] is not None  # backing off
        assert httpx.get(f"{hub}/v1/fleet/stats").json()["stored"] == 0  # the cut body was never stored
        proxy.remove_toxic("hub", "cut")
        with local_service(cfg) as svc:
            assert svc.uploader.due() is False or svc.status()["consecutive_failures"] == 1
            second = svc.force_sync()["sync"]
            assert second["ok"] and second["remaining"] == 0
    _assert_exactly_once(cfg, tmp_path / "hub", queued)


def _kill_with_a_reply_held(cfg_path, proxy, stored) -> None:
    """Run `uplink sync` in a process, hold the hub's replies (bandwidth 0 passes nothing while present), and
    SIGKILL the process once it waits on a held reply: a batch stored after the hold, or none for 1.5 s (the
    reply in the proxy when the hold came is held too)."""
    proc = subprocess.Popen([sys.executable, "-m", "samantha", "uplink", "sync", "--json", "-c", str(cfg_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        start, deadline = stored(), time.monotonic() + 60
        while time.monotonic() < deadline and stored() < start + 3:
            time.sleep(0.05)
        assert stored() >= start + 3, proc.stderr.read() if proc.poll() is not None else "no progress"
        proxy.add_toxic("hub", "bandwidth", {"rate": 0}, name="hold")
        held_from, last, stable_since = stored(), -1, time.monotonic()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            now = stored()
            if now > held_from:
                break
            if now != last:
                last, stable_since = now, time.monotonic()
            elif time.monotonic() - stable_since > 1.5:
                break
            time.sleep(0.02)
        assert proc.poll() is None, proc.stderr.read()
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
        proxy.remove_toxic("hub", "hold")
    assert proc.returncode == -signal.SIGKILL


def test_uploader_sigkilled_mid_batch_resumes_without_loss_or_duplicates(tmp_path):
    with hub_behind_proxy(tmp_path / "hub") as (hub, link, proxy):
        # a long client timeout: a held reply is still awaited when the kill comes
        cfg = cube_config(tmp_path, link, batch_span_s=600, timeout_s=30.0)
        cfg_path = write_config(cfg, tmp_path / "samantha.yaml")
        seed(cfg, hours=4)
        queued = _queued(cfg)

        def stored() -> int:
            return httpx.get(f"{hub}/v1/fleet/stats", timeout=10).json()["stored"]

        proxy.add_toxic("hub", "latency", {"latency": 250}, name="slow")  # the run is still going when we act
        for _ in range(3):  # a starved host may let the kill land between two batches: then once more
            _kill_with_a_reply_held(cfg_path, proxy, stored)
            at_kill = stored()
            with local_service(cfg) as svc:
                ob = svc.outbox.stats()
            stored_not_acked = at_kill - (ob["last_seq"] - ob["pending_batches"])
            if stored_not_acked >= 1:
                break
        assert stored_not_acked >= 1, (at_kill, ob)  # the hub holds a batch its sender never heard back about
        proxy.remove_toxic("hub", "slow")
        r = cli(["uplink", "sync", "--json"], cfg_path)
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)["sync"]
        assert out["ok"] and out["remaining"] == 0
        # that batch: answered by the watermark or as a duplicate, never stored twice
        assert out["acked_by_watermark"] + out["duplicates"] >= stored_not_acked, out
        assert at_kill < out["watermark"]  # the kill came before the end: the second run did the rest
    _assert_exactly_once(cfg, tmp_path / "hub", queued)
