"""The demo's last act writes the HTML report over the records earlier acts left, and prints its path."""

from __future__ import annotations

import time
from pathlib import Path

import duckdb
import pytest
from rich.console import Console

from samantha.harness.demo import ACTS, DemoContext, report_act
from samantha.loop import tables
from tests.console.fixture_records import T0, build_store


@pytest.mark.timeout(120)
def test_report_act_writes_the_report_and_prints_its_path(config, tmp_path: Path) -> None:
    assert ACTS[-1] == "samantha.harness.demo.report_act"
    (tmp_path / "sre" / "state").mkdir(parents=True)
    build_store(tmp_path / "sre" / "state" / "telemetry.duckdb", tmp_path / "bundles")
    # the fixture is dated in the future; the act reports the last 24 h, so move it to now
    con = duckdb.connect(str(tmp_path / "sre" / "state" / "telemetry.duckdb"))
    shift = time.time() - 43200 - (T0 + 40000)  # inc-a 12 h ago, inc-c 6.4 h ago
    con.execute("UPDATE incidents SET opened_ts = opened_ts + ?, closed_ts = closed_ts + ?", [shift, shift])
    con.execute("UPDATE actions SET created_ts = created_ts + ?, done_ts = done_ts + ?, "
                "verified_ts = verified_ts + ?", [shift, shift, shift])
    con.execute("UPDATE requests SET ts = ts + ?", [shift])
    con.close()
    other = duckdb.connect(str(tmp_path / "empty.duckdb"))  # a store with nothing to report ranks last
    tables.create(other.execute)
    other.close()
    console = Console(record=True, width=200)
    ctx = DemoContext(config=config.model_copy(update={"data_dir": str(tmp_path)}), console=console,
                      workdir=tmp_path, fast=True)
    report_act.run(ctx)
    out = console.export_text()
    path = tmp_path / "report.html"
    assert f"report written: {path.resolve()}" in out
    assert ctx.facts["report"] == str(path.resolve())
    html = path.read_text()
    assert "Incidents (3)" in html and html.count("data:image/png;base64,") == 3
    assert "MTTR p50 1.4 s over 2 recoveries" in out  # p50 of inc-a 0.8 s and inc-b 2.0 s (rollouts: outside 24 h)
    assert "(3 incidents + rollouts" in out  # the 3 incidents; the 5 rollouts are outside the 24 h window
