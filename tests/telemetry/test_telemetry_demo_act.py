"""The telemetry demo act runs end to end (fast mode) on a fresh DuckDB file."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from samantha.core.config import SamanthaConfig
from samantha.harness.demo import DemoContext, telemetry_act
from samantha.telemetry import TelemetryStore


@pytest.mark.timeout(60)
def test_telemetry_act_fast(config: SamanthaConfig, tmp_path) -> None:
    out = io.StringIO()
    ctx = DemoContext(config=config.model_copy(update={"data_dir": str(tmp_path)}),
                      console=Console(file=out, width=120), workdir=tmp_path, fast=True)
    telemetry_act.run(ctx)
    text = out.getvalue()
    assert "Samantha RSS" in text and "cardinality guard" in text and "up=1" in text
    assert ctx.facts["host samples stored"] > 20
    assert "fast path: 5 gate passes" in text and ctx.facts["gate reads from memory"] >= 4  # after the first pass
    assert ctx.facts["OTLP series from one histogram"] == 5 and "OTLP/HTTP histogram export: 200" in text
    with TelemetryStore.open(ctx.config) as s:  # the act closed its store; the data is on disk
        assert s.query_scalar("SELECT count(*) FROM series WHERE metric = 'samantha_rss_bytes'") == 1
        assert s.query_scalar("SELECT count(*) FROM events WHERE kind = 'cardinality_overflow'") == 1
