"""Shipped scenarios and `samantha bench mitigate` on a real Triton Cube (`--cube triton`): two tritonservers
behind the Cube runtime, a fresh `samantha run` governing it through `sre.cube_url`, measured from its DuckDB
file. What Triton cannot apply (toxics, live degradations) is refused by name, never dropped silently."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from samantha.cli import app
from samantha.harness.triton_process import TritonUnavailable, find_triton
from samantha.twin.scenario import cube_blockers, load_scenario

SCENARIOS = Path(__file__).parents[2] / "scenarios"


def test_blockers_name_the_event_field_triton_cannot_apply() -> None:
    latency = load_scenario(SCENARIOS / "active-latency.yaml")
    assert cube_blockers(latency, "triton") == [
        ("events[1].fault", "no fault proxy stands in front of the Triton slots in this harness (toxics need one)")]
    degraded = cube_blockers(load_scenario(SCENARIOS / "active-degradation.yaml"), "triton")
    assert [f for f, _ in degraded] == ["events[1].degrade", "events[2].degrade"]
    for name in ("rollout-bad-canary", "rollout-crash-canary", "rollout-good", "no-fault-control", "input-drift"):
        assert cube_blockers(load_scenario(SCENARIOS / f"{name}.yaml"), "triton") == [], name
    for f in SCENARIOS.glob("*.yaml"):  # the twin applies everything
        assert cube_blockers(load_scenario(f), "twin") == [], f


def test_bad_cube_values_exit_2_naming_the_option_or_the_scenario_field() -> None:
    r = CliRunner().invoke(app, ["bench", "mitigate", "--cube", "nope", "--json"])
    assert r.exit_code == 2 and "--cube 'nope'" in r.output and "twin, triton" in r.output, r.output
    r = CliRunner().invoke(app, ["twin", "scenario", "run", str(SCENARIOS / "active-latency.yaml"), "--cube", "nope"])
    assert r.exit_code == 2 and "--cube 'nope'" in r.output, r.output
    r = CliRunner().invoke(app, ["twin", "scenario", "run", str(SCENARIOS / "active-latency.yaml"),
                                 "--cube", "triton", "--json"])
    assert r.exit_code == 2 and "events[1].fault" in r.output and "fault proxy" in r.output, r.output


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_mitigate_bench_on_real_triton_mitigates_the_bad_canary_and_acts_on_nothing_else() -> None:
    try:
        find_triton()
    except TritonUnavailable as e:
        pytest.skip(f"Triton cannot start here: {e}")
    from samantha.harness.bench.mitigate import run_mitigate_bench

    # quick mode's one run per scenario, on a subset: a hard fault, the no-fault control, and one Triton
    # cannot apply (listed as skipped, not run)
    out = run_mitigate_bench(repeats=1, fault_free_minutes=0, cube="triton",
                             only={"rollout-bad-canary", "no-fault-control", "active-latency"})
    assert out["cube"] == "triton"
    assert out["skipped"] == [{"scenario": "active-latency", "field": "events[1].fault",
                               "reason": "no fault proxy stands in front of the Triton slots in this harness "
                                         "(toxics need one)"}]
    ttm = out["hard_cases"]["rollout-bad-canary"]
    assert len(ttm) == 1 and ttm[0] is not None and 0 < ttm[0] < 10, out
    assert out["hard_missed"] == 0 and out["hard_ttm_p95_s"] == ttm[0]
    assert "active-latency" not in out["hard_cases"]
    assert out["fault_free_false_actions"] == {"no-fault-control": 0}, out["false_action_list"]
    assert out["false_actions"] == 0, out["false_action_list"]
    assert out["runs"] == 2 and out["fault_free_minutes"] > 0.4
