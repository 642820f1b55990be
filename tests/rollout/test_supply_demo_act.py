import pytest
from rich.console import Console

from samantha.harness.demo import ACTS, DemoContext, supply_act


@pytest.mark.timeout(60)
def test_the_supply_act_shows_rollback_and_freeze_refused_and_the_hold_lifted(config, tmp_path):
    assert "samantha.harness.demo.supply_act" in ACTS
    console = Console(record=True, width=160)
    ctx = DemoContext(config=config.model_copy(update={"data_dir": str(tmp_path)}), console=console,
                      workdir=tmp_path, fast=True)
    supply_act.run(ctx)
    out = console.export_text()
    assert "refused  signed, no TUF metadata: malformed (tuf-required)" in out
    assert "rollback (tuf-verified)" in out and "frozen (tuf-fresh)" in out
    assert "HELD" in out and "supply hold: lifted" in out
    assert "supply_hold_set" in out and "supply_hold_cleared" in out and ctx.facts["tuf_intake"]
    assert "policy module v1 from the hub: applied" in out and "refused tuf_tampered tuf.target" in out
    assert ctx.facts["tuf_modules"]
