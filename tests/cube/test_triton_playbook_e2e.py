"""The daemon (`samantha run`) in front of a real Triton Cube: it scrapes both slots' tritonservers, the
active Triton counts its failures itself, and playbook `triton-active-failures` flips to the healthy standby
through the kernel and the action ledger. No request telemetry is pushed: Triton's own counters are the only
evidence."""

from __future__ import annotations

import shutil
import threading
import time

import httpx
import pytest

from samantha.core.config import SamanthaConfig
from samantha.cube.fault_profile import FaultProfile
from samantha.harness.daemon_process import DaemonProcess, write_config
from samantha.harness.triton_cube import V2_REQUEST, TritonCube
from samantha.harness.triton_process import TritonUnavailable, find_triton
from tests.conftest import free_port
from tests.gates.test_playbooks import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def test_the_daemon_flips_away_from_a_failing_active_triton(tmp_path) -> None:
    try:
        find_triton()
        cube = TritonCube(tmp_path / "cube").start()
    except TritonUnavailable as e:
        pytest.skip(f"Triton cannot start here: {e}")
    stop = threading.Event()
    try:
        # v1 promoted on B; a bundle whose every inference fails loaded into A and promoted by an operator
        assert cube.op("load", bundle=cube.bundle("v1", "1")).status_code == 200
        assert cube.op("flip").status_code == 200
        assert cube.op("load", bundle=cube.bundle("bad", "2", profile=FaultProfile(error_rate=1.0))).status_code == 200
        assert cube.op("flip").json()["state"]["active"] == "A"
        playbooks = tmp_path / "playbooks"
        playbooks.mkdir()
        shutil.copy(ROOT / "playbooks" / "triton-active-failures.yaml", playbooks)
        cfg = SamanthaConfig.model_validate({
            "data_dir": str(tmp_path / "state"), "api": {"port": free_port()}, "host_collector": {"enabled": False},
            "llm": {"enabled": False},
            "sre": {"cube_url": cube.control_url, "playbook_dirs": [str(playbooks)], "verify_timeout_s": 10.0},
            "scrape": {"interval_s": 0.5, "targets": [
                {"name": f"triton-{s}", "url": f"http://127.0.0.1:{t.metrics_port}/metrics", "slot": s}
                for s, t in cube.slots.items()]}})

        def traffic() -> None:  # ~50 rps through the router: every answer of A is a failure Triton counts
            with httpx.Client(base_url=cube.data_url, timeout=10) as c:
                while not stop.is_set():
                    c.post("/v2/models/sensor/infer", json=V2_REQUEST)
                    time.sleep(0.02)

        with DaemonProcess(cfg, write_config(cfg, tmp_path / "samantha.yaml")).start() as d:
            d.wait_ready(60)
            t0 = time.monotonic()
            threading.Thread(target=traffic, daemon=True).start()
            deadline = time.monotonic() + 90
            flips: list[dict] = []
            while time.monotonic() < deadline and not flips:
                flips = [a for a in d.client.actions(kind="flip") if a.get("status") in ("done", "verified")]
                time.sleep(0.25)
            assert flips, f"no flip: {d.client.actions()}\n{d.tail()}"
            took = time.monotonic() - t0
            flip = flips[0]
            assert flip["playbook"] == "triton-active-failures" and flip["requested_by"] == "playbook"
            evidence = flip["evidence"]
            verdict = next(iter(evidence.values())) if isinstance(evidence, dict) else evidence[0]
            assert verdict["gate"] == "triton-active-failure-ratio" and verdict["status"] == "fail"
            assert verdict["values"]["observed"] > 0.2
            assert cube.state()["active"] == "B"
            alerts = [a for a in d.client.actions(kind="alert") if a.get("playbook") == "triton-active-failures"]
            assert alerts, d.client.actions()
            print(f"flip {took:.1f} s after the failing traffic started (scrape every 0.5 s, window 60 s, for: 2)")
            assert took < 60, took
    finally:
        stop.set()
        cube.stop()
