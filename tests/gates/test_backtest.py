"""Backtest on telemetry recorded from the twin: the known bad-canary timeline is reproduced."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from samantha.core.clock import SimClock
from samantha.gates.replay import Recording, RecordingError
from samantha.playbooks import backtest, load_playbook
from tests.gates.recorded import TWIN_RECORDING, load_twin_recording

ROOT = Path(__file__).resolve().parents[2]
BAD_BUNDLE = "3da496f120dab85971ac1c26a54f3e1011f1d7adcd7001fd38aee3227cf393e3"  # error_rate 0.2 profile


def _bad_start() -> float:
    """When the bad canary's first request was recorded."""
    req = pq.read_table(TWIN_RECORDING / "requests.parquet", columns=["ts", "slot", "bundle"])
    ts, slot, bundle = (req.column(c).to_pylist() for c in ("ts", "slot", "bundle"))
    return min(t for t, s, b in zip(ts, slot, bundle, strict=True) if s == "standby" and b == BAD_BUNDLE)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_cli_backtest_reproduces_bad_canary_timeline(tmp_path):
    db = tmp_path / "twin.duckdb"
    start, end = load_twin_recording(db)
    bad = _bad_start()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "samantha", "playbook", "test", *map(str, sorted((ROOT / "playbooks").glob("*.yaml"))),
                        "--replay", str(db), "--json", "--step", "1"], capture_output=True, text=True, env=env,
                       cwd=ROOT, timeout=220)
    assert r.returncode == 0, r.stderr[-2000:]
    rep = json.loads(r.stdout)
    fired = rep["firings"]
    # the A/A phase (standby = same model, 90 s, shadow-scored) fires nothing; the bad canary fires once
    assert [f["playbook"] for f in fired] == ["bad-canary"], fired
    f = fired[0]
    assert bad <= f["ts"] <= bad + 1.5, (f["ts"] - bad)
    assert [a["action"] for a in f["actions"]] == ["abort_rollout", "quarantine", "alert"]
    assert f["evidence"] and all(v["status"] == "fail" for v in f["evidence"])
    assert rep["suppressed"].get("bad-canary", 0) > 0  # it kept failing; the cooldown held the repeats
    assert rep["speedup"] > 1.0 and rep["evaluations"] == pytest.approx(end - start, abs=2)
    assert [x["bundle"] for x in rep["rollouts"]][-1] == BAD_BUNDLE


def test_parquet_replay_matches(tmp_path):
    pb = load_playbook(ROOT / "playbooks" / "bad-canary.yaml")
    bad = _bad_start()
    with Recording(TWIN_RECORDING) as rec:
        rep = backtest([pb], rec, start=bad - 10, end=bad + 5, step_s=0.5, clock=SimClock(bad - 10))
    assert len(rep.firings) == 1 and bad <= rep.firings[0].ts <= bad + 1.0


def test_bad_recordings_are_refused(tmp_path):
    with pytest.raises(RecordingError, match="no such file"):
        Recording(tmp_path / "nope.duckdb")
    junk = tmp_path / "junk.duckdb"
    junk.write_bytes(b"not a database")
    with pytest.raises(RecordingError, match="not a readable DuckDB file"):
        Recording(junk)
    (tmp_path / "empty").mkdir()
    with pytest.raises(RecordingError, match="neither"):
        Recording(tmp_path / "empty")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "samantha", "playbook", "test", str(ROOT / "playbooks" / "bad-canary.yaml"),
                        "--replay", str(junk)], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert r.returncode == 2 and "not a readable DuckDB file" in " ".join(r.stderr.split())
