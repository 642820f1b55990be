"""The gates demo act runs end to end (fast mode) and turns red on the bad canary."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from samantha.core.config import SamanthaConfig
from samantha.harness.demo import ACTS, DemoContext


@pytest.mark.timeout(120)
def test_gates_act(tmp_path):
    from samantha.harness.demo import gates_act

    assert "samantha.harness.demo.gates_act" in ACTS
    out = io.StringIO()
    ctx = DemoContext(config=SamanthaConfig(data_dir=str(tmp_path)), console=Console(file=out, width=120),
                      workdir=tmp_path, fast=True)
    gates_act.run(ctx)
    text = out.getvalue()
    assert "recorded from the twin" in text and "FAIL" in text
    assert "no gate failed" in text
    caught = float(ctx.facts["gates: bad canary caught after"].split()[0])
    assert 0 < caught <= 1.0
    assert "from the latency sketch" in ctx.facts["gates: sketched p99"] and "(bound +/-1%)" in ctx.facts["gates: sketched p99"]
