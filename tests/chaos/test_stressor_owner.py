"""Stressors belong to the ledger that recorded them: a Cube's leftover check never counts another Cube's
(or another run's) stressors on the same host, and a revert by tag kills only its own."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from samantha.chaos.providers.revert import STRESSOR_MODULE, stressors


def _stressor(tag: str, ledger: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", STRESSOR_MODULE, "cpu", "--amount", "0.01", "--duration", "30",
                             "--tag", tag, "--ledger", ledger], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.mark.timeout(60)
def test_stressors_are_found_by_their_owning_ledger_and_tag(tmp_path):
    mine, theirs = str(tmp_path / "a" / "chaos.sqlite"), str(tmp_path / "b" / "chaos.sqlite")
    procs = [_stressor("st-mine", mine), _stressor("st-theirs", theirs)]
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(stressors(ledger=mine) + stressors(ledger=theirs)) < 2:
            time.sleep(0.05)
        assert [p.pid for p in stressors(ledger=mine)] == [procs[0].pid]
        assert [p.pid for p in stressors(ledger=theirs)] == [procs[1].pid]
        assert [p.pid for p in stressors(tag="st-theirs")] == [procs[1].pid]
        assert stressors(ledger=str(tmp_path / "nobody")) == []
    finally:
        for p in procs:
            p.kill()
            p.wait(10)
    assert stressors(ledger=mine) == []
