"""The demo act triages live with the real model: the fast path first, the LLM after."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from samantha.core.config import SamanthaConfig
from samantha.harness.demo import DemoContext, llm_act

pytestmark = [pytest.mark.llm, pytest.mark.slow, pytest.mark.timeout(240)]


def test_llm_act_shows_the_action_before_the_triage(tmp_path) -> None:
    out = io.StringIO()
    cfg = SamanthaConfig(data_dir=str(tmp_path), llm={"timeout_s": 90})
    ctx = DemoContext(config=cfg, console=Console(file=out, width=200), workdir=tmp_path, fast=True)
    llm_act.run(ctx)
    text = out.getvalue()
    assert text.index("fast path: action abort_rollout taken") < text.index("triage attached to incident (LLM)")
    assert "llm triage" in ctx.facts and ctx.facts["llm triage"].startswith("llm")
