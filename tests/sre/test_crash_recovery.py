"""The daemon SIGKILLed mid-flip and restarted: the flip completes (or is recognised as done) and is
never applied twice. The crash is a test-only hook (SAMANTHA_CRASH_AT) that kills the process at a
named point of the act node."""

from __future__ import annotations

from pathlib import Path

import pytest

from samantha.core.crashpoint import ENV
from samantha.harness.daemon_process import DaemonProcess
from tests.sre.kit import flips, load_and_flip, twin_and_daemon, wait_for


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.parametrize("point", ["act.after_intent.flip", "act.after_call.flip"])
def test_sigkill_mid_flip_then_restart_flips_exactly_once(tmp_path: Path, point: str) -> None:
    with twin_and_daemon(tmp_path, env={ENV: point}) as (twin, daemon):
        wait_for(lambda: daemon.client.status()["verdicts"], 30, "first gate verdicts")
        good = twin.cube.state().slot("active").bundle_id
        load_and_flip(twin, "bad", "1", error_rate=0.5)
        gen0 = twin.cube.state().generation

        assert daemon.wait_exit(45) == -9, daemon.tail()  # killed itself at the crash point
        after_crash = twin.cube.state()
        if point == "act.after_intent.flip":
            assert after_crash.generation == gen0 and after_crash.slot("active").bundle_id != good
        else:
            assert after_crash.generation == gen0 + 1 and after_crash.slot("active").bundle_id == good

        restarted = DaemonProcess(daemon.config, daemon.config_path)  # same state dir, no crash hook
        try:
            restarted.start().wait_ready()
            st = restarted.client.status()
            assert st["recovery"]["resumed"] is True and st["recovery"]["at"] == ["act"]
            flip = wait_for(lambda: [a for a in flips(restarted) if a["status"] == "verified"], 45,
                            "the interrupted flip settled and verified")[0]
            assert len(flips(restarted)) == 1
            result = flip["result"]
            if point == "act.after_call.flip":
                assert "already shows the effect" in result["reconciled"]  # not sent again
            else:
                assert result["cube"]["applied"] is True  # completed with the original request id
            state = twin.cube.state()
            assert state.generation == gen0 + 1  # exactly one flip reached the Cube
            assert state.slot("active").bundle_id == good
            wait_for(lambda: restarted.client.status()["loop"]["cycles"] > st["loop"]["cycles"] + 8, 30,
                     "more cycles after recovery")
            assert twin.cube.state().generation == gen0 + 1 and len(flips(restarted)) == 1
            assert restarted.client.get("/v1/audit/verify")["ok"]
            assert restarted.stop() == 0, restarted.tail()
        finally:
            restarted.close()
