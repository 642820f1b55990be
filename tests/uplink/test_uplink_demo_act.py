import pytest
from rich.console import Console

from samantha.harness.demo import ACTS, DemoContext, uplink_act


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_the_demo_act_shows_drop_growth_safe_mode_and_catch_up(config, tmp_path):
    assert "samantha.harness.demo.uplink_act" in ACTS
    console = Console(record=True, width=160)
    ctx = DemoContext(config=config.model_copy(update={"data_dir": str(tmp_path)}), console=console,
                      workdir=tmp_path, fast=True)
    uplink_act.run(ctx)
    out = console.export_text()
    assert "the link drops" in out and "the link returns" in out and "catch-up" in out
    assert "SAFE MODE since +8 h" in out and "normal mode" in out
    assert ctx.facts["uplink_duplicates_at_hub"] == 0
    assert "SAMANTHA_UP (workqueue, bound 1024 MiB)" in out and ctx.facts["uplink_up_stream_unwritten"] == 0
    assert ctx.facts["uplink_catchup_x_realtime"] >= 100
    # the 3 rollouts run offline reached the hub: 2 bundles promoted in 12 h, 1 of 3 regressed, snapped back in 0.6 s
    assert "fleet DORA at the hub" in out
    assert ctx.facts["fleet_dora_per_day"] == 4.0 and ctx.facts["fleet_dora_change_failure_rate"] == 0.333333
    assert ctx.facts["fleet_dora_mttr_p50_s"] == 0.6


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_after_the_chaos_act_the_hub_relays_a_decision_on_its_waiting_escalation(config, tmp_path):
    from samantha.harness.demo import chaos_act

    console = Console(record=True, width=240)
    ctx = DemoContext(config=config.model_copy(update={"data_dir": str(tmp_path)}), console=console,
                      workdir=tmp_path, fast=True)
    chaos_act.run(ctx)
    aid = ctx.facts["chaos escalation waiting"]
    uplink_act.run(ctx)
    out = console.export_text()
    assert f"a decision relayed by the hub: ana denies {aid}" in out, out[-3000:]
    assert "verified it (accepted) and the queue applied it: denied, audited as relayed by hub" in out, out[-3000:]
    assert ctx.facts["uplink_relayed_decision"] == f"{aid} denied"
