"""Proposal -> Chaos Toolkit experiment document; templates (experiments/*.yaml); a native document made to
run on this Cube; journal reading.

Document shape:
- steady-state hypothesis: one probe per gate (samantha.chaos.providers.probes.gate_ok), asking
  Samantha's gates over her local API, checked continuously during the method;
- method: [enable_shadow + baseline] + inject(the catalog fault) + [the kind's extra steps, e.g.
  await_restart] + [hold]; the kind's registry declaration (samantha/chaos/fault_kinds.py) decides
  the bracketed parts;
- rollbacks: revert_experiment, always present (and run with strategy `always`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from samantha.chaos.fault_kinds import ACTIONS, REGISTRY, Fault, FaultBase, Target
from samantha.core.proposal import Proposal
from samantha.core.validated_yaml import load_model, load_model_file
from samantha.gates.spec import Gate, GateBase

PROBES = "samantha.chaos.providers.probes"
BASELINE_S = 3.0  # shadow traffic on the standby before its fault: the findings' baseline


class ExperimentTemplate(BaseModel):
    """A human-written experiment (experiments/*.yaml). It still goes through pre-flight."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str = Field(min_length=3, max_length=200)
    description: str = ""
    target: Target
    fault: Fault
    hypothesis: list[str] = Field(default_factory=list, description="registered gate names to hold, besides the "
                                  "configured defaults")
    guards: list[Gate] = Field(default_factory=list, description="inline gates that stop the run when they fail")
    shadow: bool | None = Field(None, description="mirror live traffic to the standby during the run "
                                "(default: on for standby-path faults)")

    def proposal(self) -> Proposal:
        params = self.fault.model_dump(mode="json", exclude={"kind"})
        return Proposal(kind=self.fault.kind, target=self.target, params=params, source="template",  # type: ignore[attr-defined]
                        title=self.title, rationale=self.description or None)


def load_template(path: str | Path) -> ExperimentTemplate:
    """Raises DocumentError with file:line:column, field and reason for each problem."""
    return load_model_file(ExperimentTemplate, path)


def parse_template(text: str, source: str) -> ExperimentTemplate:
    return load_model(ExperimentTemplate, text, source)


def wants_shadow(fault: FaultBase, target: str, explicit: bool | None) -> bool:
    if explicit is not None:
        return explicit
    return target == "standby" and REGISTRY[fault.kind].shadow_on_standby  # type: ignore[attr-defined]


def _probe(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"type": "probe", "name": name, "tolerance": True,
            "provider": {"type": "python", "module": PROBES, "func": "gate_ok", "arguments": arguments}}


def build_document(*, experiment_id: str, proposal: Proposal, fault: FaultBase, configuration: dict[str, Any],
                   hypothesis: list[str], guards: list[GateBase] = (), shadow: bool | None = None,
                   slot: str | None = None, extension: dict[str, Any] | None = None) -> dict[str, Any]:
    kind = fault.kind  # type: ignore[attr-defined]
    fk = REGISTRY[kind]
    probes = [_probe(f"gate:{g}", {"gate": g}) for g in dict.fromkeys(hypothesis)]
    probes += [_probe(f"guard:{g.name}", {"gate": g.name, "spec": g.model_dump(mode="json")}) for g in guards]
    method: list[dict[str, Any]] = []
    if wants_shadow(fault, str(proposal.target), shadow):
        method.append({"type": "action", "name": "mirror-to-standby",
                       "provider": {"type": "python", "module": ACTIONS, "func": "enable_shadow"}})
        method.append({"type": "action", "name": "baseline",
                       "provider": {"type": "python", "module": ACTIONS, "func": "settle",
                                    "arguments": {"seconds": BASELINE_S}}})
    method.append({"type": "action", "name": f"inject:{kind}",
                   "provider": {"type": "python", "module": ACTIONS, "func": "inject",
                                "arguments": {"kind": kind, "target": proposal.target,
                                              "params": fault.model_dump(mode="json", exclude={"kind"})}}})
    method += fk.after_inject(fault, slot)
    if not fk.holds_itself:  # e.g. the drill holds and flips back inside its own action
        method.append({"type": "action", "name": "hold",
                       "provider": {"type": "python", "module": ACTIONS, "func": "hold",
                                    "arguments": {"duration_s": fault.duration_s}}})
    return {
        "version": "1.0.0",
        "title": proposal.label(),
        "description": proposal.rationale or f"{kind} on the {proposal.target} path",
        "tags": ["samantha", kind, str(proposal.target)],
        "configuration": {**configuration, "experiment_id": experiment_id},
        "steady-state-hypothesis": {"title": "Samantha's gates hold", "probes": probes},
        "method": method,
        "rollbacks": [{"type": "action", "name": "revert-all-injections",
                       "provider": {"type": "python", "module": ACTIONS, "func": "revert_experiment"}}],
        "extensions": [{"name": "samantha", "experiment_id": experiment_id, **(extension or {})}],
    }


def native_document(doc: dict[str, Any], *, experiment_id: str, configuration: dict[str, Any], proxy_url: str,
                    extension: dict[str, Any]) -> dict[str, Any]:
    """A native Chaos Toolkit document as this Cube runs it: its own configuration, overlaid with Samantha's (her
    providers need it) and with the toxiproxy address pointed at the Cube's slot proxies. Pre-flight classified
    `for_proxy: slot-b` as the Cube's standby path, so the run must reach exactly those proxies, whatever address
    the file carried; a probe written `http://${toxiproxy_host}:${toxiproxy_port}/...` follows them too."""
    from urllib.parse import urlsplit

    u = urlsplit(proxy_url)
    toxi = {"toxiproxy_url": proxy_url.rstrip("/"), "toxiproxy_host": u.hostname, "toxiproxy_port": u.port}
    return {**doc, "configuration": {**(doc.get("configuration") or {}), **configuration, **toxi,
                                     "experiment_id": experiment_id},
            "extensions": [*(doc.get("extensions") or []),
                           {"name": "samantha", "experiment_id": experiment_id, **extension}]}


class JournalSummary(BaseModel):
    """What happened, from the journal's run[] entries and hypothesis states, not only `status`."""

    model_config = ConfigDict(extra="forbid")

    status: str
    deviated: bool
    ok: bool = Field(description="every method activity and rollback succeeded and no hypothesis deviated")
    aborted_by_hypothesis: bool
    activities: list[dict[str, Any]]
    rollbacks: list[dict[str, Any]]
    failed_probes: list[dict[str, Any]]
    started: str | None = None
    ended: str | None = None
    duration_s: float | None = None


def _act(r: dict[str, Any]) -> dict[str, Any]:
    a = r.get("activity", {})
    return {"name": a.get("name"), "type": a.get("type"), "status": r.get("status"), "start": r.get("start"),
            "end": r.get("end"), "duration": r.get("duration"), "output": r.get("output"),
            "exception": "".join(r.get("exception") or [])[-500:] or None}


def summarize_journal(j: dict[str, Any]) -> JournalSummary:
    runs = [_act(r) for r in j.get("run") or []]
    rollbacks = [_act(r) for r in j.get("rollbacks") or []]
    failed = []
    ss = j.get("steady_states") or {}
    for phase in ("before", "during", "after"):
        states = ss.get(phase) or []
        for s in states if isinstance(states, list) else [states]:
            if not s:
                continue
            for p in s.get("probes") or []:
                if not p.get("tolerance_met", True):
                    failed.append({"phase": phase, **_act(p)})
    during_failed = any(f["phase"] == "during" for f in failed)
    ok = (j.get("status") == "completed" and not j.get("deviated") and not failed
          and all(r["status"] == "succeeded" for r in runs) and all(r["status"] == "succeeded" for r in rollbacks))
    return JournalSummary(status=str(j.get("status")), deviated=bool(j.get("deviated")), ok=ok,
                          aborted_by_hypothesis=during_failed, activities=runs, rollbacks=rollbacks,
                          failed_probes=failed, started=j.get("start"), ended=j.get("end"),
                          duration_s=j.get("duration"))
