import pytest
from rich.console import Console

from samantha.harness.demo import DemoContext, kernel_act


@pytest.mark.timeout(60)
def test_the_demo_act_shows_refusals_verified_log_and_delivered_alert(config, tmp_path):
    console = Console(record=True, width=140)
    ctx = DemoContext(config=config.model_copy(update={"data_dir": str(tmp_path)}), console=console,
                      workdir=tmp_path, fast=True)
    kernel_act.run(ctx)
    out = console.export_text()
    assert "llm-never-acts" in out and "quarantine-keeps-one-healthy" in out and "flip-rate-limit" in out
    assert "audit verify: ok=True" in out and "record 2: hash does not match" in out
    assert "receiver down: delivered 0, queued 1" in out and "receiver up: delivered 1" in out
    assert ctx.facts["kernel_refusals"] == 3
    assert "bundle with-evil refused by rule denied-component: denied-component: sbom.cdx.json lists " \
           "pkg:pypi/evil@0.1" in out
    assert "bundle clean admitted" in out and "attestations/slsa-provenance.intoto.json" in out
