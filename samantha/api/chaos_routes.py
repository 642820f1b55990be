"""Chaos endpoints for the local API: `make_chaos_router(service)`; the daemon mounts it.

Errors are `{"error": {"code", "reason", "field"}}` with a 4xx status; a bad document
names the field (and line, for YAML) and nothing already stored is touched.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from samantha.chaos.experiment import parse_template
from samantha.chaos.fault_kinds import catalog_table
from samantha.chaos.native_classify import parse_native
from samantha.chaos.service import ChaosBusy, ChaosService, leftovers
from samantha.core.proposal import Proposal
from samantha.core.validated_yaml import DocumentError


def _err(status: int, code: str, reason: str, field: str | None = None, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "reason": reason, "field": field, **extra}}, status_code=status)


class GatesRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    names: list[str] = Field(default_factory=list)
    specs: list[dict[str, Any]] = Field(default_factory=list)


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    template: str | None = Field(None, description="experiment YAML text")
    source: str = Field("<request>", description="file name for error messages")
    proposal: dict[str, Any] | None = None


class ExportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    template: str = Field(description="experiment YAML text")
    source: str = Field("<request>", description="file name for error messages")


class NativeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    document: str = Field(description="a native Chaos Toolkit experiment, JSON or YAML text")
    source: str = Field("<request>", description="file name for error messages")


class Decision(BaseModel):
    model_config = ConfigDict(extra="allow")


def make_chaos_router(service: ChaosService) -> APIRouter:
    r = APIRouter(prefix="/v1/chaos")

    @r.get("/catalog")
    def catalog() -> dict[str, Any]:
        return {"faults": catalog_table()}

    @r.post("/gates")
    def gates(req: GatesRequest) -> Any:
        try:
            verdicts = service.evaluate(req.names, req.specs)
        except KeyError as e:
            return _err(404, "unknown_gate", f"no gate named {e.args[0]!r}", "names")
        except ValidationError as e:
            first = e.errors()[0]
            return _err(422, "invalid_gate", first["msg"], "specs." + ".".join(map(str, first["loc"])))
        return {"verdicts": [v.model_dump(mode="json") for v in verdicts]}

    @r.get("/gates")
    def gates_list() -> dict[str, Any]:
        return {"gates": service.gates_list()}

    @r.get("/plan")
    def plan(llm: bool = Query(False, description="ask the local LLM for extra proposals and a ranking")) -> Any:
        return service.plan(use_llm=llm)

    @r.post("/preflight")
    def preflight(proposal: Proposal) -> Any:
        res, inp = service.preflight(proposal.model_copy(update={"source": "operator"}))
        return {**res.model_dump(mode="json"), "input": inp.model_dump(mode="json", exclude={"proposal"})}

    @r.post("/run-once")
    def run_once() -> Any:
        p = service.plan()
        top = next((x for x in p["proposals"] if x["verdict"] == "sanctioned"), None)
        if top is None:
            return _err(409, "nothing_sanctioned", "no proposal is sanctioned now", None, counts=p["counts"])
        try:
            return service.submit(Proposal.model_validate(top["proposal"]))
        except ChaosBusy as e:
            return _err(409, "busy", str(e))

    @r.post("/run")
    def run(req: RunRequest) -> Any:
        try:
            if req.template is not None:
                return service.run_template(parse_template(req.template, req.source))
            if req.proposal is not None:
                return service.submit(Proposal.model_validate({**req.proposal, "source": "operator"}))
        except DocumentError as e:
            first = e.problems[0]
            return _err(422, "invalid_experiment", first.reason, first.field,
                        problems=[p.as_dict() for p in e.problems])
        except ValidationError as e:
            first = e.errors()[0]
            return _err(422, "invalid_proposal", first["msg"], ".".join(map(str, first["loc"])))
        except ChaosBusy as e:
            return _err(409, "busy", str(e))
        return _err(422, "invalid", "give `template` (YAML text) or `proposal`", "template")

    @r.post("/export")
    def export(req: ExportRequest) -> Any:
        """The Chaos Toolkit experiment `/run` would start for this template, with its pre-flight verdict."""
        try:
            return service.export(parse_template(req.template, req.source))
        except DocumentError as e:
            first = e.problems[0]
            return _err(422, "invalid_experiment", first.reason, first.field,
                        problems=[p.as_dict() for p in e.problems])

    def _native_doc(req: NativeRequest) -> dict[str, Any] | JSONResponse:
        try:
            return parse_native(req.document, req.source)
        except DocumentError as e:
            first = e.problems[0]
            return _err(422, "invalid_experiment", first.reason, first.field, line=first.line,
                        problems=[p.as_dict() for p in e.problems])

    @r.post("/experiments/native")
    def native(req: NativeRequest) -> Any:
        """A native Chaos Toolkit experiment: pre-flighted activity by activity, then run (sanctioned), queued for
        an operator (escalate) or refused (reject)."""
        doc = _native_doc(req)
        if isinstance(doc, JSONResponse):
            return doc
        try:
            return service.submit_native(doc, source=req.source)
        except ChaosBusy as e:
            return _err(409, "busy", str(e))

    @r.post("/experiments/native/preflight")
    def native_preflight(req: NativeRequest) -> Any:
        """The verdict `/experiments/native` would reach now, with every reason; nothing is run or queued."""
        doc = _native_doc(req)
        return doc if isinstance(doc, JSONResponse) else service.preflight_native(doc)

    @r.get("/experiments")
    def experiments(limit: int = Query(50, ge=1, le=1000)) -> dict[str, Any]:
        return {"experiments": service.records.experiments(limit)}

    @r.get("/experiments/{eid}")
    def experiment(eid: str) -> Any:
        e = service.records.experiment(eid)
        if e is None:
            return _err(404, "unknown_experiment", f"no experiment {eid}", "eid")
        return {**e, "injections": service.ledger.entries(eid), "findings": service.records.findings(eid)}

    @r.get("/findings")
    def findings(limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
        return {"findings": service.records.findings(limit=limit)}

    @r.get("/outbox")
    def outbox() -> dict[str, Any]:
        return {"proposed_gates": service.records.outbox()}

    @r.get("/ledger")
    def ledger(open_only: bool = Query(False)) -> dict[str, Any]:
        return {"injections": service.ledger.entries(open_only=open_only), "recovery": service.last_recovery}

    @r.get("/leftovers")
    def left() -> dict[str, Any]:
        return leftovers(service.config)

    @r.post("/selftest")
    def selftest() -> dict[str, Any]:
        return service.selftest_reverts()

    # --- approvals ------------------------------------------------------------------------
    @r.get("/approvals")
    def approvals(status: str | None = Query(None, pattern="^(pending|approved|denied|expired|executed|refused)$")) -> Any:
        if service.approvals is None:
            return _err(404, "no_approvals", "approvals are not enabled on this host")
        return {"approvals": service.approvals.list(status)}

    @r.get("/approvals/{aid}")
    def approval(aid: str) -> Any:
        item = service.approvals.get(aid) if service.approvals is not None else None
        if item is None:
            return _err(404, "unknown_approval", f"no approval {aid}", "aid")
        return item

    def _decide(aid: str, decision: dict[str, Any], verb: str) -> Any:
        if service.approvals is None:
            return _err(404, "no_approvals", "approvals are not enabled on this host")
        from samantha.chaos.approvals import DecisionRefused

        try:
            return service.approvals.decide(aid, decision, expect=verb)
        except DecisionRefused as e:
            return _err(e.status, e.code, e.reason, e.field)

    @r.post("/approvals/{aid}/approve")
    def approve(aid: str, decision: dict[str, Any] = Body(...)) -> Any:
        return _decide(aid, decision, "approve")

    @r.post("/approvals/{aid}/deny")
    def deny(aid: str, decision: dict[str, Any] = Body(...)) -> Any:
        return _decide(aid, decision, "deny")

    return r
