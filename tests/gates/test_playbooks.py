"""Playbooks: schema, lint (every error kind, all at once, with positions), runner limits, CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from samantha.gates.spec import ThresholdGate
from samantha.gates.verdict import Verdict
from samantha.playbooks import Playbook, PlaybookRunner, RunContext, combine, lint, load_playbook

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "playbooks").glob("*.yaml"))

GOOD = """\
name: mem
version: 1
owner: sre@example.com
when:
  any: [host-memory]
  for: 2
then:
  - {action: alert, severity: warning}
limits: {cooldown: 10s, max_actions_per_hour: 2}
"""


def cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "samantha", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=120)


def test_shipped_playbooks_are_clean():
    assert len(SHIPPED) >= 6
    _, problems = lint(SHIPPED)
    assert problems == []
    names = {load_playbook(p).name for p in SHIPPED}
    assert {"bad-canary", "active-regression", "latency-slo", "input-drift", "expiry-safe-mode",
            "host-exhaustion"} <= names


BAD_FILES = {
    "schema.yaml": """\
name: Bad Name
version: 0
owner: x
when: {any: [host-memory], for: 0}
then:
  - {action: reboot}
""",
    "refs.yaml": """\
name: refs
version: 1
owner: x
metrics: [my_custom_metric]
gates:
  - {name: host-memory, kind: threshold, metric: host_memory_used_percent, value: 0.5}
  - {name: custom-ok, kind: threshold, metric: my_custom_metric, value: 1}
  - {name: typo, kind: threshold, metric: host_memroy_used_percent, value: 1}
when:
  any: [no-such-gate, custom-ok, typo]
then:
  - {action: alert}
""",
    "windows.yaml": """\
name: windows
version: 1
owner: x
when:
  all:
    - {name: long, kind: threshold, metric: latency_ms, value: 1, window: 2h}
    - {name: old-base, kind: drift, metric: latency_ms, window: 10m, baseline_offset: 50m, baseline_window: 20m}
    - {name: tiny, kind: sequential, signal: errors, window: 1s, bin: 2s}
  for: 2d
then:
  - {action: alert}
limits:
  cooldown: 2h
  max_actions_per_hour: 3
""",
    "scope.yaml": """\
name: scope
version: 1
owner: x
when:
  any: [active-error-rate]
  scope: {slot: active}
then:
  - {action: abort_rollout}
  - {action: hold_rollout}
  - {action: quarantine, target: active}
""",
    "scope2.yaml": """\
name: scope2
version: 1
owner: x
when:
  any: [canary-errors]
  scope: {slot: standby}
then:
  - {action: flip}
""",
    "dup.yaml": """\
name: scope2
version: 1
owner: x
when:
  any: [host-disk]
then:
  - {action: alert}
""",
}


def test_lint_reports_every_error_kind_at_once(tmp_path):
    paths = []
    for name, text in BAD_FILES.items():
        (tmp_path / name).write_text(text)
        paths.append(tmp_path / name)
    _, problems = lint(paths)
    text = "\n".join(str(p) for p in problems)
    by_file: dict[str, list] = {}
    for p in problems:
        by_file.setdefault(Path(p.source).name, []).append(p)
    # schema errors, all of them, with line:column
    schema = [(p.line, p.column, p.field) for p in by_file["schema.yaml"]]
    assert schema == [(1, 1, "name"), (2, 1, "version"), (4, 28, "when.for"), (6, 5, "then[0]")], text
    assert "reboot" in by_file["schema.yaml"][-1].reason
    # unknown gates and metrics, duplicate gate names (a built-in shadowed)
    refs = [p.reason for p in by_file["refs.yaml"]]
    assert any("unknown gate 'no-such-gate'" in r for r in refs)
    assert any("unknown metric 'host_memroy_used_percent'" in r for r in refs)
    assert not any("my_custom_metric" in r for r in refs)  # declared under metrics:
    assert any("duplicate gate name 'host-memory'" in r for r in refs)
    # impossible windows
    win = [p.reason for p in by_file["windows.yaml"]]
    assert any("exceeds raw retention" in r for r in win)
    assert any("baseline reaches back" in r for r in win)
    assert any("not shorter than window" in r for r in win)
    assert any("longer than a day" in r for r in win)
    assert any("unreachable" in r for r in win)
    # actions not allowed in scope
    sc = [p.reason for p in by_file["scope.yaml"]]
    assert any("abort_rollout is not allowed in scope slot=active" in r for r in sc)
    assert any("quarantine target=active" in r for r in sc)
    assert any("contradict" in r for r in sc)
    assert any("flip is not allowed in scope slot=standby" in p.reason for p in by_file["scope2.yaml"])
    # duplicate playbook names across files
    assert any("duplicate playbook name 'scope2'" in p.reason for p in by_file["dup.yaml"])
    # every semantic problem has a real position
    assert all(p.line > 0 and p.column > 0 for p in problems), text
    line = next(p for p in by_file["refs.yaml"] if "no-such-gate" in p.reason)
    assert (line.line, line.column) == (10, 9)


def test_lint_cli_exit_codes_and_format(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    r = cli("playbook", "lint", str(good))
    assert r.returncode == 0, r.stdout + r.stderr
    bad = tmp_path / "scope.yaml"
    bad.write_text(BAD_FILES["scope.yaml"])
    r = cli("playbook", "lint", str(good), str(bad))
    assert r.returncode == 2
    assert f"{bad}:8:6: then[0].action: abort_rollout is not allowed in scope slot=active" in r.stdout
    r = cli("playbook", "lint", "--json", str(bad))
    doc = json.loads(r.stdout)
    assert r.returncode == 2 and doc["ok"] is False and len(doc["problems"]) == 4
    assert doc["problems"][0]["line"] == 7 and "contradict" in doc["problems"][0]["reason"]


def test_gates_cli_lists_the_registry():
    r = cli("playbook", "gates", "--json")
    assert r.returncode == 0
    names = {g["gate"]["name"]: g["provenance"]["source"] for g in json.loads(r.stdout)["gates"]}
    assert names["canary-errors"] == "builtin" and "host-memory" in names


def test_schema_cli():
    r = cli("playbook", "schema")
    assert r.returncode == 0
    schema = json.loads(r.stdout)
    assert schema["title"] == "Playbook" and "when" in schema["properties"]
    assert "for" in json.dumps(schema["$defs"]["When"])


def _v(name: str, status: str, now: float) -> Verdict:
    g = ThresholdGate(name=name, metric="m", value=1)
    return Verdict.make(g, status, status, now, (now - 1, now))  # type: ignore[arg-type]


def _pb(**kw) -> Playbook:
    doc = {"name": "p", "version": 1, "owner": "o", "when": {"any": ["host-memory"]},
           "then": [{"action": "alert"}], **kw}
    return Playbook.model_validate(doc)


def test_runner_for_count_cooldown_and_anti_flap():
    r = PlaybookRunner([_pb(when={"any": ["host-memory"], "for": 3},
                            limits={"cooldown": 5, "max_actions_per_hour": 2})])
    fired = []
    for t in range(40):
        fired += r.step([_v("host-memory", "fail", float(t))], RunContext(float(t)))
    real = [f.ts for f in fired if f.suppressed is None]
    assert real[:2] == [2.0, 7.0]  # 3 consecutive failures, then the cooldown
    assert len(real) == 2  # anti-flap: 2 per hour
    assert any("anti-flap" in (f.suppressed or "") for f in fired)


def test_runner_for_duration_resets_on_pass():
    r = PlaybookRunner([_pb(when={"any": ["host-memory"], "for": "10s"})])
    out = []
    seq = ["fail"] * 8 + ["pass"] + ["fail"] * 12
    for t, s in enumerate(seq):
        out += r.step([_v("host-memory", s, float(t))], RunContext(float(t)))
    assert [f.ts for f in out] == [19.0]


def test_runner_inconclusive_policy_and_priority():
    low = _pb(name="low", priority=1, limits={"on_inconclusive_for": {"after": 5, "then": [{"action": "safe_mode"}]}})
    high = _pb(name="high", priority=900)
    r = PlaybookRunner([low, high])
    out = []
    for t in range(7):
        out += r.step([_v("host-memory", "inconclusive", float(t))], RunContext(float(t)))
    assert [(f.playbook, f.trigger, f.actions[0].action) for f in out] == [("low", "inconclusive", "safe_mode")]
    both = r.step([_v("host-memory", "fail", 100.0)], RunContext(100.0))
    assert [f.playbook for f in both] == ["high", "low"]


_STATUS = st.sampled_from(["pass", "fail", "inconclusive", None])  # None: the gate gave no verdict


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_STATUS, _STATUS, st.booleans()), min_size=1, max_size=60))
def test_skipping_idle_steps_never_changes_what_fires(seq):
    """The steady-state loop skips decide on an idle set when the last step saw one too: same firings."""
    def runner() -> PlaybookRunner:
        return PlaybookRunner([
            _pb(name="any2", when={"any": ["host-memory", "host-disk"], "for": 2}, limits={"cooldown": 3}),
            _pb(name="all3s", when={"all": ["host-memory", "host-disk"], "for": "3s"}),
            _pb(name="inc", when={"any": ["host-disk"]},
                limits={"on_inconclusive_for": {"after": 4, "then": [{"action": "safe_mode"}]}}),
            _pb(name="canary", when={"any": ["host-memory"], "scope": {"slot": "standby"}},
                limits={"on_inconclusive_for": {"after": 2, "then": [{"action": "hold_rollout"}]}})])

    every, skipping = runner(), runner()
    fired_every, fired_skipping, last_idle = [], [], False
    for t, (mem, disk, canary) in enumerate(seq):
        vs = [_v(g, s, float(t)) for g, s in (("host-memory", mem), ("host-disk", disk)) if s]
        ctx = RunContext(float(t), canary_bundle="b" if canary else None)
        fired_every += every.step(vs, ctx)
        idle = skipping.idle({v.gate: v.status for v in vs}, ctx)
        if not (idle and last_idle):
            fired_skipping += skipping.step(vs, ctx)
            last_idle = idle
    key = [(f.ts, f.playbook, f.trigger, f.suppressed) for f in fired_every]
    assert key == [(f.ts, f.playbook, f.trigger, f.suppressed) for f in fired_skipping]


def test_idle_means_no_playbook_could_start_acting():
    r = PlaybookRunner([_pb(name="inc", when={"any": ["host-disk"]},
                            limits={"on_inconclusive_for": {"after": 4, "then": [{"action": "safe_mode"}]}}),
                        _pb(name="mem")])
    now = RunContext(0.0)
    assert r.idle({"host-memory": "pass", "host-disk": "pass"}, now)
    assert r.idle({"host-memory": "inconclusive", "host-disk": "pass"}, now)  # "mem" has no inconclusive policy
    assert not r.idle({"host-memory": "fail", "host-disk": "pass"}, now)
    assert not r.idle({"host-memory": "pass", "host-disk": "inconclusive"}, now)  # "inc" would start its timer
    assert not r.idle({"host-memory": "pass"}, now)  # no verdict for host-disk is inconclusive too
    canary = PlaybookRunner([_pb(name="c", when={"any": ["host-disk"], "scope": {"slot": "standby"}},
                                 limits={"on_inconclusive_for": {"after": 4, "then": [{"action": "hold_rollout"}]}})])
    assert canary.idle({}, now)  # no canary: out of scope, step would only reset it
    assert not canary.idle({}, RunContext(0.0, canary_bundle="b"))


def test_combine_never_turns_missing_data_into_pass():
    assert combine([], "any") == "inconclusive"
    assert combine(["pass", "inconclusive"], "any") == "inconclusive"
    assert combine(["fail", "inconclusive"], "all") == "inconclusive"
    assert combine(["fail", "fail"], "all") == "fail"


def test_scope_rollout_step_and_bundle():
    pb = _pb(when={"any": ["host-memory"], "scope": {"slot": "standby", "bundle": "sensor-*", "rollout_step": [1, 5]}})
    r = PlaybookRunner([pb])
    assert not r.step([_v("host-memory", "fail", 1.0)], RunContext(1.0, rollout_step=25, canary_bundle="sensor-2"))
    assert not r.step([_v("host-memory", "fail", 2.0)], RunContext(2.0, rollout_step=5, canary_bundle="other"))
    assert r.step([_v("host-memory", "fail", 3.0)], RunContext(3.0, rollout_step=5, canary_bundle="sensor-2"))


def test_unreadable_and_invalid_yaml(tmp_path):
    p = tmp_path / "broken.yaml"
    p.write_text("name: [unclosed\n")
    _, problems = lint([p, tmp_path / "missing.yaml"])
    assert problems[0].line == 2 and "invalid YAML" in problems[0].reason
    assert any("cannot read" in x.reason for x in problems)
    with pytest.raises(Exception, match="invalid YAML"):
        load_playbook(p)
