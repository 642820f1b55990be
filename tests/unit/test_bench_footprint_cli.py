"""`samantha bench footprint` refuses a baseline that is not a checkout (exit 2, naming it)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from samantha.cli import app


def test_a_baseline_that_is_not_a_checkout_is_bad_input(tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["bench", "footprint", "--json", "--baseline", str(tmp_path)])
    assert r.exit_code == 2
    text = " ".join(r.output.split())  # the console wraps long lines
    assert str(tmp_path) in text and "not a Samantha checkout" in text
