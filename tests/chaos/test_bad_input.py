"""Bad templates and requests get clear errors (file:line, field, reason); nothing stored is touched."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from samantha.cli import app

EXPERIMENTS = Path(__file__).parents[2] / "experiments"


def test_every_shipped_template_validates():
    runner = CliRunner()
    files = sorted(EXPERIMENTS.glob("*.yaml"))
    assert len(files) >= 5
    for f in files:
        r = runner.invoke(app, ["chaos", "validate", str(f), "--json"])
        assert r.exit_code == 0, (f, r.output)


def test_a_bad_template_names_file_line_field_and_reason(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("title: noisy\ntarget: samantha-store\nfault: {kind: latency, latency_ms: 99999, evil: 1}\n")
    r = CliRunner().invoke(app, ["chaos", "validate", str(bad), "--json"])
    assert r.exit_code == 2
    import json

    probs = json.loads(r.output)["problems"]
    fields = {p["field"]: p for p in probs}
    assert fields["target"]["line"] == 2
    assert fields["fault.latency.latency_ms"]["line"] == 3 and "10000" in fields["fault.latency.latency_ms"]["reason"]
    assert "fault.latency.evil" in fields
