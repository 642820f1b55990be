"""The demo's OpenAI-Cube act: a real llama.cpp server behind the router, whole and streamed answers timed,
the A/A shadow read as no divergence."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from samantha.core.config import SamanthaConfig
from samantha.harness.demo import ACTS, DemoContext, openai_act

pytestmark = [pytest.mark.llm, pytest.mark.slow]


def test_openai_act_shows_timing_and_a_a_divergence(tmp_path) -> None:
    assert "samantha.harness.demo.openai_act" in ACTS
    out = io.StringIO()
    ctx = DemoContext(config=SamanthaConfig(data_dir=str(tmp_path)), console=Console(file=out, width=200),
                      workdir=tmp_path, fast=True)
    openai_act.run(ctx)
    text = out.getvalue()
    assert "skipped" not in text, text
    assert "whole    answer: time to first token" in text and "chunks relayed as generated" in text
    assert ctx.facts["real OpenAI Cube: A/A shadow divergence"] == [0.0, 0.0]
    assert "(openai, command)" in text and "refused (start_failed)" in text, text
    assert "real OpenAI Cube: cube serve load + flip (command adapter)" in ctx.facts
