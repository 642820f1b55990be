"""The rollout demo act, run alone in fast mode on the real twin."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from samantha.config import SamanthaConfig
from samantha.demo import DemoContext, rollout_act


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_rollout_act_fast(tmp_path: Path) -> None:
    console = Console(record=True, width=140)
    ctx = DemoContext(config=SamanthaConfig(data_dir=str(tmp_path)), console=console, workdir=tmp_path, fast=True)
    rollout_act.run(ctx)
    text = console.export_text()
    assert "promoted" in text and "caught" in text and "refused" in text
    assert ctx.facts["rollout: bad bundle time to traffic-off s"] < 5
