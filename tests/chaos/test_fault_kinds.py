"""One declaration per fault kind: a kind registered once is seen by every consumer.

`brownout` below is a new kind that exists only in this test. Registering its one
`FaultKind` declaration is all it takes for pre-flight, the planner, LLM proposals, the
providers' inject dispatch, experiment compilation, the revert self-test, the catalog and
the LLM's enumerations to know it. Then every shipped kind is checked the same way.
"""

from __future__ import annotations

from typing import Any, Literal

import pytest
from pydantic import Field

from samantha.chaos import planner
from samantha.chaos.experiment import build_document
from samantha.chaos.fault_kinds import (
    REGISTRY,
    Candidate,
    FaultBase,
    FaultKind,
    FaultRegistry,
    catalog_table,
    intensity_params,
    parse_fault,
    preflight_input,
)
from samantha.chaos.ledger import Ledger
from samantha.chaos.providers import actions
from samantha.chaos.providers.revert import _OPS
from samantha.chaos.service import ChaosService
from samantha.core.config import SamanthaConfig
from samantha.core.domain import ProbableCause
from samantha.core.proposal import Proposal
from samantha.kernel.policy import CubeSnapshot, SlotState
from samantha.kernel.preflight import GateStatus, HostSnapshot, check
from samantha.llm.chaos_planning import ChaosAdvice
from samantha.llm.chaos_planning import Proposal as LlmProposal
from samantha.llm.schemas import chaos_proposal_schema

GOOD = SlotState(bundle="a" * 64, healthy=True, loaded=True, verified=True)
CUBE = CubeSnapshot(active=GOOD, standby=GOOD.model_copy(update={"bundle": "b" * 64}))
INJECTED: list[tuple[str, str, dict[str, Any]]] = []


class Brownout(FaultBase):
    """The slot answers slowly on a share of requests (test-only kind)."""

    kind: Literal["brownout"] = "brownout"
    share: float = Field(0.1, gt=0, le=1.0)

    def traffic_share(self) -> float:
        return self.share


def inject_brownout(f: Brownout, target: str, c: dict[str, Any], led: Ledger) -> dict:
    iid = led.intend(c["experiment_id"], f.kind, target, f.model_dump(mode="json"), {"op": "noise_off",
                     "control_url": "http://127.0.0.1:9"}, f.duration_s)
    INJECTED.append((f.kind, target, f.model_dump(mode="json")))
    led.mark_active(iid, "brownout (test)")
    return {"injection_id": iid}


BROWNOUT = FaultKind(
    "brownout", Brownout, "path", ("proxy", "slot"), ("active", "standby"), "delete the toxic", "remove_toxic",
    f"{__name__}:inject_brownout",
    ({"share": 0.02, "duration_s": 10.0}, {"share": 0.1, "duration_s": 20.0}, {"share": 0.5, "duration_s": 30.0}),
    selftest={"share": 0.01},
    plan=lambda _t: [Candidate("standby", {"share": 1.0, "duration_s": 20.0}, "the fallback path browns out")],
    rehearses=(ProbableCause.network_fault.value,), shadow_on_standby=True)


def _inp(p: Proposal, **kw: Any):
    base = dict(proposal=p, now=1_800_000_000.0, gates=[GateStatus(name="g", status="pass")], hypothesis_gates=["g"],
                error_budget_remaining=1.0, host=HostSnapshot(cpu_count=2, cpu_used_ratio=0.1, mem_available_mb=4000,
                                                              disk_free_mb=9e4),
                cube=CUBE, revert_tested=frozenset(REGISTRY.names()))
    return preflight_input(**{**base, **kw})


@pytest.fixture()
def brownout():
    with REGISTRY.registered(BROWNOUT) as k:
        yield k
    assert "brownout" not in REGISTRY


def test_a_new_kind_needs_only_its_declaration(brownout, tmp_path):
    # catalog (API /v1/chaos/catalog, `samantha chaos catalog`) and parsing
    row = next(r for r in catalog_table() if r["kind"] == "brownout")
    assert row["targets"] == ["active", "standby"] and row["ranges"]["share"]["maximum"] == 1.0
    assert parse_fault("brownout", {"share": 0.3}).traffic_share() == 0.3

    # pre-flight: the kernel judges it from its profile, by the same rules as every kind
    ok = check(_inp(Proposal(kind="brownout", target="standby", params={"share": 1.0})))
    assert ok.verdict == "sanctioned", ok.explain()
    assert ok.blast is not None and ok.blast.role == "standby" and ok.blast.touches == ("proxy", "slot")
    wide = check(_inp(Proposal(kind="brownout", target="active", params={"share": 0.5})))
    assert wide.verdict == "escalate" and {r.code for r in wide.reasons} == {"active-share"}
    assert "bad-target" in {r.code for r in check(_inp(Proposal(kind="brownout", target="host", params={}))).reasons}
    untested = check(_inp(Proposal(kind="brownout", target="standby", params={}), revert_tested=frozenset()))
    assert {r.code for r in untested.reasons} == {"revert-untested"}

    # planner: its candidates, the incident causes it rehearses, LLM intensities
    mine = [p for p in planner.generate(5.0) if p.kind == "brownout"]
    assert [(p.target, p.params, p.dependency) for p in mine] == [
        ("standby", {"share": 1.0, "duration_s": 20.0}, "router->proxy->slot (standby, fallback)")]
    assert "brownout" in planner.cause_kinds()["network_fault"]
    kept, dropped = planner.from_llm(ChaosAdvice(proposals=[
        LlmProposal(fault="brownout", target="standby", intensity="high", hypothesis="the fallback stays up")]))
    assert not dropped and kept[0].params == {"share": 0.5, "duration_s": 30.0}
    assert intensity_params("brownout", "low") == {"share": 0.02, "duration_s": 10.0}

    # the LLM's allowed enumerations come from the registry
    schema = chaos_proposal_schema(REGISTRY.names(), REGISTRY.targets())
    assert "brownout" in schema["properties"]["proposals"]["items"]["properties"]["fault"]["enum"]

    # experiment compilation: shadowed on the standby path, injected through the providers' `inject`, then held
    f = parse_fault("brownout", {"share": 1.0})
    doc = build_document(experiment_id="exp-1", proposal=mine[0], fault=f, configuration={}, hypothesis=["g"])
    names = [a["name"] for a in doc["method"]]
    assert names == ["mirror-to-standby", "baseline", "inject:brownout", "hold"]
    step = doc["method"][2]["provider"]
    assert (step["module"], step["func"], step["arguments"]["kind"]) == ("samantha.chaos.providers.actions", "inject",
                                                                         "brownout")

    # the providers' inject dispatch, and the revert self-test table
    conf = {"samantha_ledger": str(tmp_path / "chaos.sqlite"), "experiment_id": "exp-1"}
    out = actions.inject("brownout", "standby", {"share": 0.2}, configuration=conf)
    assert INJECTED[-1] == ("brownout", "standby", {"kind": "brownout", "share": 0.2, "duration_s": 30.0})
    led = Ledger(conf["samantha_ledger"])
    try:
        assert led.get(out["injection_id"])["kind"] == "brownout"  # type: ignore[index]
    finally:
        led.close()
    assert "brownout" in REGISTRY.selftestable() and brownout.selftest_target == "standby"


def test_the_self_test_runs_every_declared_self_test(brownout, tmp_path, monkeypatch):
    """ChaosService.selftest_reverts takes each kind's minimal fault and target from the registry."""
    calls: list[tuple[str, str, dict[str, Any]]] = []
    monkeypatch.setattr(actions, "inject", lambda k, t, p, configuration: calls.append((k, t, p)))
    svc = ChaosService.__new__(ChaosService)
    svc.config = SamanthaConfig.model_validate({"data_dir": str(tmp_path)})
    svc.cc, svc._api_url, svc.journals = svc.config.chaos, lambda: "http://127.0.0.1:9", tmp_path
    svc.ledger = Ledger(tmp_path / "chaos.sqlite")
    svc._verify_clean = lambda: True  # type: ignore[method-assign]
    try:
        res = svc.selftest_reverts()
    finally:
        svc.ledger.close()
    assert set(res["results"]) == set(REGISTRY.selftestable()) and "brownout" in res["results"]
    assert ("brownout", "standby", {"share": 0.01, "duration_s": 2.0}) in calls
    assert ("cpu_burn", "host", {"cores": 0.05, "duration_s": 2.0}) in calls
    assert {k for k, _, _ in calls} == set(REGISTRY.selftestable())


@pytest.mark.parametrize("kind", REGISTRY.names())
def test_every_shipped_kind_is_seen_by_every_consumer(kind):
    k = REGISTRY[kind]
    assert k.injector() is getattr(actions, k.inject)  # the providers can inject it
    assert k.revert_op in _OPS  # its ledger revert op is one revert.py performs
    assert kind in {r["kind"] for r in catalog_table()}
    target = k.selftest_target
    p = Proposal(kind=kind, target=target, params=k.intensity("low"))
    r = check(_inp(p))
    assert r.blast is not None and r.blast.kind == kind and "not-in-catalog" not in {x.code for x in r.reasons}
    f = parse_fault(kind, k.intensity("medium"))
    doc = build_document(experiment_id="e", proposal=p, fault=f, configuration={}, hypothesis=["g"], slot="A")
    assert f"inject:{kind}" in [a["name"] for a in doc["method"]]
    assert ("hold" in [a["name"] for a in doc["method"]]) is not k.holds_itself


def test_a_declaration_is_checked_when_registered():
    reg = FaultRegistry()
    with pytest.raises(ValueError, match="targets"):
        reg.register(FaultKind("brownout", Brownout, "path", ("slot",), ("samantha-store",), "x", "remove_toxic",
                               "inject_toxic", ({}, {}, {})))
    with pytest.raises(Exception, match="share"):
        reg.register(FaultKind("brownout", Brownout, "path", ("slot",), ("standby",), "x", "remove_toxic",
                               "inject_toxic", ({"share": 2.0}, {}, {})))
    with pytest.raises(ValueError, match="kind"):
        reg.register(FaultKind("dimout", Brownout, "path", ("slot",), ("standby",), "x", "remove_toxic",
                               "inject_toxic", ({}, {}, {})))
    reg.register(BROWNOUT)
    with pytest.raises(ValueError, match="twice"):
        reg.register(BROWNOUT)
    assert reg.resolve(Proposal(kind="latency", target="standby", params={})).problems  # not in this registry
