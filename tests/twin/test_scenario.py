"""Scenario files: line-numbered errors for bad ones; a shipped scenario runs end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from samantha.core.validated_yaml import DocumentError
from samantha.twin.scenario import load_scenario

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
SHIPPED = {"good-rollout", "bad-canary-errors", "slow-canary-latency", "divergent-canary", "active-degradation",
           "input-drift", "no-fault-control"}


def test_every_shipped_scenario_parses() -> None:
    names = {load_scenario(p).name for p in SCENARIOS.glob("*.yaml")}
    assert names >= SHIPPED


@pytest.mark.parametrize("text,line,field,needle", [
    ("name: x\nduration_s: 30\nevents:\n  - {at: 5, deploy: {bundle: v2, profile: {error_rat: 0.2}}}\n",
     4, "events[0].deploy.profile.error_rat", "Extra inputs"),
    ("name: x\nduration_s: 30\nevents:\n  - {at: 5}\n", 4, "events[0]", "exactly one of"),
    ("name: x\nduration_s: 30\nevents:\n  - at: 5\n    fault: {slot: sideways, toxic: {type: latency}}\n",
     5, "events[0].fault.slot", "Input should be"),
    ("name: x\nduration_s: thirty\n", 2, "duration_s", "valid number"),
    ("name: x\nduration_s: 30\nevents: [\n", 4, "", "invalid YAML"),
])
def test_bad_scenario_files_name_line_and_field(tmp_path: Path, text: str, line: int, field: str, needle: str) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(DocumentError) as e:
        load_scenario(f)
    p = e.value.problems[0]
    assert (p.line, p.field) == (line, field) and needle in p.reason, str(e.value)
    assert str(f) in str(e.value)


@pytest.mark.timeout(60)
def test_cli_bad_scenario_exit_2_with_location(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text("name: x\nduration_s: 30\nevents:\n  - {at: 50, flip: true}\n")
    r = subprocess.run([sys.executable, "-m", "samantha", "twin", "scenario", "run", str(f), "--json"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and f"{f}:4:" in r.stderr and "events[0].at" in r.stderr and "after the end" in r.stderr


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_bad_canary_scenario_end_to_end() -> None:
    r = subprocess.run([sys.executable, "-m", "samantha", "twin", "scenario", "run",
                        str(SCENARIOS / "bad-canary-errors.yaml"), "--json", "--speed", "3",
                        "--no-samantha"],  # the twin's own runner; Samantha's reaction is tested in tests/rollout
                       capture_output=True, text=True, timeout=110)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["name"] == "bad-canary-errors" and out["actions"] == [] and out["false_actions"] == 0
    [fault] = out["faults"]
    assert fault["kind"] == "bad_bundle" and fault["onset_s"] == 5.0 and fault["knobs"] == ["error_rate"]
    assert fault["detected_s"] is None and fault["mitigated_s"] is None
    assert all(e["ok"] for e in out["timeline"])
    by_role = out["traffic"]["by_role"]
    assert by_role["active"]["error_rate"] == 0.0
    assert 0.08 < by_role["standby"]["error_rate"] < 0.4 and by_role["standby"]["n"] > 50
    assert out["traffic"]["telemetry"]["dropped"] == 0
