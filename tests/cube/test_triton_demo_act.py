"""The demo's Triton act: two real tritonservers behind the cube runtime; the active Triton's own counters
scraped and judged by the server gate, beside the rollout, the NaN canary and the malformed bundle."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from samantha.core.config import SamanthaConfig
from samantha.harness.demo import ACTS, DemoContext, triton_act
from samantha.harness.triton_process import TritonUnavailable, find_triton

pytestmark = pytest.mark.slow


def test_triton_act_judges_the_active_tritons_own_counters(tmp_path) -> None:
    try:
        find_triton()
    except TritonUnavailable as e:
        pytest.skip(f"Triton cannot start here: {e}")
    assert "samantha.harness.demo.triton_act" in ACTS
    out = io.StringIO()
    ctx = DemoContext(config=SamanthaConfig(data_dir=str(tmp_path)), console=Console(file=out, width=240),
                      workdir=tmp_path, fast=True)
    triton_act.run(ctx)
    text = out.getvalue()
    assert "skipped" not in text, text
    assert "gate triton-active-failure-ratio pass (active failure_ratio 0 <= 0.2 (0/20))" in text, text
    assert ctx.facts["real Triton Cube: active failure ratio (Triton's counters)"] == 0.0
