import re

import pytest
from rich.console import Console

from samantha.harness.demo import DemoContext, chaos_act


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_the_demo_act_shows_proposals_a_run_its_finding_the_gate_and_a_waiting_escalation(config, tmp_path):
    console = Console(record=True, width=200)
    ctx = DemoContext(config=config.model_copy(update={"data_dir": str(tmp_path)}), console=console,
                      workdir=tmp_path, fast=True)
    chaos_act.run(ctx)
    out = console.export_text()
    assert "proposals from the dependency map" in out and "sanctioned" in out
    assert "finding:" in out and "new gate learned-standby-p99" in out
    assert "faults left on the Cube after the run: 0" in out
    assert re.search(r"samantha approvals approve apr-[0-9a-f]{16} --key \S+alice.key", out), out
    assert "[active-slot-down]" in out
    # the shipped native Chaos Toolkit experiments, judged by the running daemon's pre-flight
    assert ctx.facts["native chaos experiments"] == {"standby-latency-toxiproxy": "sanctioned",
                                                     "active-timeout-toxiproxy": "escalate",
                                                     "unknown-provider": "escalate"}, out
    assert "unknown-provider.yaml: escalate — [unclassified:method[0]]" in out, out
    # and one run natively by the daemon: ledgered, reverted on the proxy, journaled
    assert ctx.facts["native chaos run"] == "completed", out
    assert "latency=reverted; toxics left on the proxy: 0" in out, out
