"""Native Chaos Toolkit documents: chaoslib's validation with file/field/line, and the classification table."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from samantha.chaos.native_classify import (
    Classified,
    NativePlan,
    classify,
    is_native,
    judge,
    may_run_approved,
    parse_native,
    proxy_roles,
)
from samantha.core.validated_yaml import DocumentError

NATIVE = Path(__file__).resolve().parents[2] / "experiments" / "native"
ROLES = proxy_roles("A", "B")


def _plan(name: str):
    p = NATIVE / name
    return classify(parse_native(p.read_text(), str(p)), ROLES)


def test_toxiproxy_latency_on_standby_is_a_latency_fault_on_the_standby():
    plan = _plan("standby-latency-toxiproxy.yaml")
    assert not plan.unclassified
    [inj] = plan.injections
    assert inj.path == "method[0]"
    assert inj.proposal.kind == "latency" and inj.proposal.target == "standby"
    assert inj.proposal.params["latency_ms"] == 200 and inj.proposal.params["jitter_ms"] == 20
    assert {a.role for a in plan.activities} == {"probe", "injection", "control"}


def test_active_proxy_maps_to_the_active_target():
    [inj] = _plan("active-timeout-toxiproxy.yaml").injections
    assert (inj.proposal.kind, inj.proposal.target, inj.proposal.params["timeout_ms"]) == ("timeout", "active", 1000)


def test_unknown_module_is_unclassified_naming_activity_and_module():
    plan = _plan("unknown-provider.yaml")
    assert not plan.injections
    [reason] = plan.escalation_reasons()
    assert "mystery-action" in reason and "chaosmystery.actions" in reason and "does not exist" in reason


def test_unknown_proxy_and_unregistered_toxic_escalate():
    doc = {"title": "t", "description": "d", "method": [
        {"type": "action", "name": "other-proxy", "provider": {
            "type": "python", "module": "chaostoxi.toxic.actions", "func": "create_latency_toxic",
            "arguments": {"for_proxy": "db", "toxic_name": "x", "latency": 10}}},
        {"type": "action", "name": "slicer", "provider": {
            "type": "python", "module": "chaostoxi.toxic.actions", "func": "create_slicer_toxic",
            "arguments": {"for_proxy": "slot-b", "toxic_name": "x", "average_size": 1, "size_variation": 1,
                          "delay": 1}}},
        {"type": "action", "name": "shell", "provider": {"type": "process", "path": "rm"}},
        {"type": "action", "name": "too-slow", "provider": {
            "type": "python", "module": "chaostoxi.toxic.actions", "func": "create_latency_toxic",
            "arguments": {"for_proxy": "slot-b", "toxic_name": "x", "latency": 10_000_000}}},
    ]}
    reasons = classify(doc, ROLES).escalation_reasons()
    assert len(reasons) == 4
    assert "fronts no Cube slot" in reasons[0]
    assert "not in the classification table" in reasons[1]
    assert "process action" in reasons[2]
    assert "outside the catalog's ranges" in reasons[3]


def test_malformed_document_names_file_field_and_line():
    text = "version: 1.0.0\ntitle: t\nmethod:\n  - {type: probe, name: a, provider: {type: process, path: 'true'}}\n"
    with pytest.raises(DocumentError) as e:
        parse_native(text, "bad.yaml")
    [p] = e.value.problems
    assert p.source == "bad.yaml" and p.field == "description" and "requires a description" in p.reason
    text = "title: t\ndescription: d\nmethod:\n  - type: action\n    name: a\n"
    with pytest.raises(DocumentError) as e:
        parse_native(text, "bad.yaml")
    [p] = e.value.problems
    assert (p.field, p.line) == ("method[0]", 4) and "provider" in p.reason
    with pytest.raises(DocumentError) as e:
        parse_native('{"title": "t", "method": [', "bad.json")
    assert "invalid YAML" in str(e.value) and "bad.json:" in str(e.value)


@pytest.mark.parametrize("name", ["standby-latency-toxiproxy.yaml", "active-timeout-toxiproxy.yaml"])
def test_real_chaos_validate_accepts_the_shipped_native_examples(name):
    chaos = shutil.which("chaos", path=str(Path(sys.executable).parent))
    assert chaos, "the chaos CLI is installed with chaostoolkit"
    r = subprocess.run([chaos, "--no-log-file", "validate", str(NATIVE / name)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def _kernel(p):
    from samantha.kernel.preflight import check
    from tests.chaos.test_preflight import inp

    return check(inp(kind=p.kind, target=p.target, params=p.params))


def test_judge_standby_latency_is_sanctioned_by_the_kernel():
    v = judge(_plan("standby-latency-toxiproxy.yaml"), _kernel)
    assert v.verdict == "sanctioned", v.reasons


def test_judge_active_only_path_escalates_with_the_kernels_blast_radius_reason():
    v = judge(_plan("active-timeout-toxiproxy.yaml"), _kernel)
    assert v.verdict == "escalate"
    assert any("[active-share]" in r and "only path" in r for r in v.reasons), v.reasons


def test_judge_unknown_provider_escalates_without_any_kernel_call():
    calls = []
    v = judge(_plan("unknown-provider.yaml"), lambda p: calls.append(p))
    assert v.verdict == "escalate" and not calls and "chaosmystery.actions" in v.reasons[0]


def test_native_documents_are_told_apart_from_templates():
    assert is_native((NATIVE / "unknown-provider.yaml").read_text())
    assert is_native('{"title": "t", "description": "d", "method": []}')  # JSON is YAML
    templates = sorted((NATIVE.parent).glob("*.yaml"))
    assert templates and not any(is_native(t.read_text()) for t in templates)
    assert not is_native("title: [unclosed\n")  # left to the template reader, which names the line


@given(st.sets(st.sampled_from(["method[0]", "method[1]", "rollbacks[0]", "steady-state-hypothesis.probes[0]"])),
       st.sets(st.sampled_from(["unclassified:method[0]", "unclassified:method[1]", "unclassified:rollbacks[0]",
                                "unclassified:steady-state-hypothesis.probes[0]", "active-share"])))
def test_an_approval_covers_exactly_the_unclassified_activities_the_operator_saw(paths, approved):
    plan = NativePlan({}, [Classified(p, "a", "unclassified", "unknown") for p in sorted(paths)])
    v = judge(plan, lambda p: pytest.fail("no injection: the kernel is not asked"))
    assert v.verdict == ("escalate" if paths else "sanctioned")
    assert may_run_approved(v, approved) == all(f"unclassified:{p}" in approved for p in paths)


def test_an_approval_waives_only_the_kernel_escalations_it_names():
    v = judge(_plan("active-timeout-toxiproxy.yaml"), _kernel)
    codes = {i["code"] for i in v.items if i["severity"] == "escalate"}
    assert "active-share" in codes and all(i["activity"] == "method[0]" for i in v.items)
    assert may_run_approved(v, codes) and not may_run_approved(v, codes - {"active-share"})


def test_samantha_chaos_validate_reads_a_native_document_with_chaoslib(tmp_path):
    def cli(*args):
        return subprocess.run([sys.executable, "-m", "samantha", "chaos", "validate", *args], capture_output=True,
                              text=True, timeout=120)

    ok = cli(str(NATIVE / "standby-latency-toxiproxy.yaml"), "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout) == {"ok": True, "native": True, "title": "Standby tolerates 200 ms of latency",
                                     "method": 1, "rollbacks": 1}
    bad = tmp_path / "bad.yaml"
    bad.write_text("title: t\ndescription: d\nmethod:\n  - type: action\n    name: a\n")
    r = cli(str(bad))
    assert r.returncode == 2 and f"{bad}:4:" in r.stderr and "method[0]" in r.stderr, r.stderr
    assert json.loads(cli(str(bad), "--json").stdout)["problems"][0]["line"] == 4
