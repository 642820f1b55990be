"""`samantha dora` against a hand-computed fixture; `samantha report` writes a self-contained HTML file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from samantha.reporting.dora import RecoveryFact, RolloutFact, compute, fleet_dora, local_dora
from samantha.reporting.records_access import open_reader, parse_when
from tests.console.fixture_records import EXPECTED, SINCE, T0, UNTIL, assert_subset, build_store


@pytest.fixture
def store(tmp_path: Path) -> tuple[Path, Path]:
    data = tmp_path / "state"
    data.mkdir()
    build_store(data / "telemetry.duckdb", tmp_path / "bundles")
    cfg = tmp_path / "samantha.yaml"
    cfg.write_text(yaml.safe_dump({"data_dir": str(data)}))
    return data / "telemetry.duckdb", cfg


def _cli(cfg: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "samantha", *args, "-c", str(cfg)], capture_output=True, text=True,
                          env=os.environ, timeout=120)


@pytest.mark.timeout(120)
def test_dora_cli_matches_the_hand_computed_fixture(store: tuple[Path, Path]) -> None:
    _, cfg = store
    out = _cli(cfg, "dora", "--since", str(SINCE), "--until", str(UNTIL), "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert_subset(doc, EXPECTED)
    assert doc["scope"] == "cube"
    assert {r["ref"] for r in doc["mttr"]["recoveries"]} == {"r3", "inc-a", "inc-b"}  # inc-c only alerted
    assert [b["bundle"] for b in doc["lead_time"]["per_bundle"]] == ["r1", "r2"]  # r5 ended outside the window


def test_dora_bad_window_is_bad_input(store: tuple[Path, Path]) -> None:
    _, cfg = store
    out = _cli(cfg, "dora", "--since", "yesterday-ish", "--json")
    assert out.returncode == 2 and "--since" in out.stderr and "ISO-8601" in out.stderr
    out = _cli(cfg, "dora", "--since", str(UNTIL), "--until", str(SINCE))
    assert out.returncode == 2 and "must be after" in out.stderr


def test_fleet_dora_over_parquet(tmp_path: Path, store: tuple[Path, Path]) -> None:
    db, _ = store
    with open_reader(db) as read:
        from samantha.reporting.dora import local_records

        ro, rc = local_records(read)
        local = local_dora(read, SINCE, UNTIL)
    for cube in ("cube-a", "cube-b"):  # the same history on two cubes, hub layout: one dir per cube
        d = tmp_path / "hub" / f"cube={cube}"
        d.mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist([{**r.model_dump(), "cube": cube} for r in ro]), d / "rollouts.parquet")
        pq.write_table(pa.Table.from_pylist([{**r.model_dump(), "cube": cube} for r in rc]), d / "recoveries.parquet")
    fleet = fleet_dora(str(tmp_path / "hub/*/rollouts.parquet"), str(tmp_path / "hub/*/recoveries.parquet"),
                       SINCE, UNTIL)
    assert fleet["cubes"] == ["cube-a", "cube-b"]
    assert fleet["per_cube"]["cube-a"]["change_failure_rate"] == local["change_failure_rate"]
    assert fleet["change_failure_rate"]["total"] == 8 and fleet["mttr"]["n"] == 6
    assert fleet["deployment_frequency"]["promotions"] == 4
    assert fleet["mttr"]["p50_s"] == local["mttr"]["p50_s"]


def test_compute_edges() -> None:
    empty = compute([], [], SINCE, UNTIL)
    assert empty["change_failure_rate"]["rate"] is None and empty["mttr"]["p50_s"] is None
    with pytest.raises(ValueError, match="until"):
        compute([], [], UNTIL, SINCE)
    ro = [RolloutFact(rollout_id="x", bundle_id="b", started_at=T0 + 10, ended_at=T0 + 20, phase="promoted")]
    doc = compute(ro, [RecoveryFact(source="incident", ref="i", onset_ts=T0, mitigated_ts=T0 + 0.25)], SINCE, UNTIL)
    assert doc["lead_time"]["bundles_without_created_at"] == 1 and doc["lead_time"]["n"] == 0
    assert doc["mttr"]["p50_s"] == 0.25


def test_parse_when() -> None:
    assert parse_when("24h", now=T0) == T0 - 86400
    assert parse_when("2026-01-01T00:00:00") == parse_when("2026-01-01T00:00:00+00:00")
    assert parse_when(str(T0)) == T0
    with pytest.raises(ValueError, match="not a duration"):
        parse_when("soon")


@pytest.mark.timeout(180)
def test_report_html_is_self_contained(tmp_path: Path, store: tuple[Path, Path]) -> None:
    _, cfg = store
    html = tmp_path / "out" / "report.html"
    out = _cli(cfg, "report", "--since", str(SINCE), "--until", str(UNTIL), "--html", str(html), "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["path"] == str(html) and doc["incidents"] == 3 and doc["rollouts"] == 4
    text = html.read_text()
    for section in ("DORA for the edge", "Incidents (3)", "Rollouts (4)", "Chaos experiments", "Findings", "Approvals",
                    "Drift SLOs"):
        assert section in text, section
    assert text.count('src="data:image/png;base64,') == 3  # one timeline per incident, embedded
    assert "http://" not in text and "https://" not in text  # nothing fetched when opened offline
    assert "canary_errors: fail" in text  # the step-by-step gate results of r3
    assert "50%" in text  # change failure rate 2/4
