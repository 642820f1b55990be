"""Lint of rollout policies (unknown gates, inconsistent margins) and of playbooks that judge a probe the Cube
does not make: every problem at file:line:column, the daemon refuses to start, the CLI exits 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from samantha.core.validated_yaml import DocumentError
from samantha.gates.policy_lint import lint_policy_file, load_policy_file
from samantha.playbooks import lint

ROOT = Path(__file__).resolve().parents[2]
POLICY = """name: lint-me
shadow:
  enabled: false
gates: [canary-errors, canary-latency, canary-latencyy]
steps:
  - {weight: 5, gates: [no-such-gate]}
  - {weight: 100}
early_success:
  enabled: true
  margin_odds: 1.5
"""


def test_policy_unknown_gates_at_their_line_and_column(tmp_path: Path) -> None:
    p = tmp_path / "policy.yaml"
    p.write_text(POLICY)
    _, problems = lint_policy_file(p)
    assert [(pr.line, pr.column, pr.field) for pr in problems] == [(4, 40, "gates[2]"), (6, 25, "steps[0].gates[0]")]
    assert all(str(pr).startswith(f"{p}:") and "unknown gate" in pr.reason for pr in problems)


def test_policy_early_success_margin_wider_than_the_abort_gate_is_rejected(tmp_path: Path) -> None:
    p = tmp_path / "policy.yaml"
    p.write_text(POLICY.replace(", canary-latencyy", "").replace("gates: [no-such-gate]", "gates: []"))
    _, [problem] = lint_policy_file(p)
    assert (problem.line, problem.column, problem.field) == (10, 3, "early_success.margin_odds")
    assert "canary-latency" in problem.reason and "1.25" in problem.reason
    p.write_text(p.read_text().replace("margin_odds: 1.5", "margin_odds: 1.2"))
    assert lint_policy_file(p)[1] == []
    # with shadow scoring the blocking median gate is the shadow one (null odds 1.25 x 1.25): 1.5 is consistent
    p.write_text(p.read_text().replace("enabled: false", "enabled: true").replace("1.2", "1.5"))
    assert lint_policy_file(p)[1] == []


def test_policy_schema_errors_and_the_daemon_refuses(tmp_path: Path) -> None:
    p = tmp_path / "policy.yaml"
    p.write_text("name: x\nsteps:\n  - {weight: 50}\n  - {weight: 20}\n")
    with pytest.raises(DocumentError) as e:
        load_policy_file(p)
    assert e.value.problems[0].line == 2 and "strictly increase" in e.value.problems[0].reason


def test_rollout_lint_cli_exit_codes(tmp_path: Path) -> None:
    bad, good = tmp_path / "bad.yaml", tmp_path / "good.yaml"
    bad.write_text(POLICY)
    good.write_text("name: fine\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "samantha", "rollout", "lint"]
    r = subprocess.run([*cmd, str(good), "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0 and json.loads(r.stdout)["ok"] is True, r.stderr
    r = subprocess.run([*cmd, str(bad)], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2 and f"{bad}:4:40: gates[2]: unknown gate 'canary-latencyy'" in r.stdout, r.stdout


def test_playbook_judging_probes_the_cube_does_not_make(tmp_path: Path) -> None:
    pb = tmp_path / "pb.yaml"
    pb.write_text("""name: probe-user
version: 1
owner: sre@example.org
when:
  all: [active-latency-cusum, active-slower-than-standby]
  scope: {slot: active}
then:
  - {action: alert, severity: warning}
""")
    assert lint([pb])[1] == []
    _, [problem] = lint([pb], probes=False)
    assert (problem.line, problem.column, problem.field) == (5, 31, "when.all[1]")
    assert "probe" in problem.reason and "active-slower-than-standby" in problem.reason


def test_a_policy_module_policy_is_checked_the_same_way() -> None:
    """What the daemon asks before it adopts a signed policy module's rollout policy (it keeps the one in force)."""
    from samantha.gates.policy_lint import check_policy
    from samantha.gates.registry import GateRegistry
    from samantha.gates.rollout_policy import RolloutPolicy

    reg = GateRegistry.with_builtins()
    assert check_policy(RolloutPolicy(), reg) == []
    assert check_policy(RolloutPolicy(gates=["canary-errors", "nope"]), reg) == [(("gates", 1), "unknown gate 'nope'")]
    [(loc, why)] = check_policy(RolloutPolicy(shadow={"enabled": False}, early_success={"enabled": True}), reg)
    assert loc == ("early_success", "margin_odds") and "pass a step early" in why
