"""The daemon as the API sees it: `ApiView` implements `samantha.api.app.DaemonView` (and the console's
`ConsoleView`) over the built `Parts` and the daemon's `LoopState`. The API never imports the daemon."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter

from samantha import __version__
from samantha.api.console import ApprovalsPort
from samantha.core.audit import DuckDBAuditStore, trusted_keys, verify_store
from samantha.core.clock import Clock
from samantha.core.signing import KeyPair
from samantha.daemon.parts import Parts
from samantha.playbooks import PlaybookRunner
from samantha.telemetry.store import TelemetryStore


@dataclass
class LoopState:
    """What the daemon's lifecycle and loops learn as they run (the parts are fixed; this changes)."""

    started_at: float
    last_cycle_end: float  # monotonic
    runner: PlaybookRunner | None = None  # a verified policy module's playbook set in force; None: the local one
    url: str | None = None  # the API's URL, once uvicorn has bound its port
    policy_in_force: str | None = None  # sha256 of the module whose playbooks run; None: the local set
    cycle_errors: int = 0
    last_error: str | None = None


class ApiView:
    """`on_ingest`: new telemetry arrived (the daemon evaluates now rather than at the next tick)."""

    def __init__(self, parts: Parts, state: LoopState, on_ingest: Callable[[], None]) -> None:
        self.parts, self.state, self._on_ingest = parts, state, on_ingest
        self.store: TelemetryStore = parts.store
        self.key: KeyPair = parts.key
        self.clock: Clock = parts.clock
        self.approvals_port: ApprovalsPort | None = parts.approvals
        self.cube_url: str = parts.cube.base_url  # a 503 names it when the Cube is unreachable
        self._console = parts.surfaces.console_router(self)

    def on_ingest(self) -> None:
        self._on_ingest()

    def ingest_admit(self, writer: str, table: str, rows: int) -> float:
        w = self.parts.surfaces.auth.writers
        return 0.0 if w is None else w.admit(writer, table, rows)

    def extra_routers(self) -> list[APIRouter]:
        return [*self.parts.routers, self._console]

    def status(self) -> dict[str, Any]:
        p, s = self.parts, self.state
        last = p.graph.last
        cube = last.get("cube")
        return {
            "version": __version__, "pid": os.getpid(), "url": s.url,
            "uptime_s": round(p.clock.time() - s.started_at, 1),
            "cube_url": p.cube.base_url, "cube": cube, "cube_error": last.get("cube_error"),
            "slots": cube["slots"] if cube else None, "weights": cube["weights"] if cube else None,
            "safe_mode": cube["safe_mode"] if cube else None,
            "verdicts": [{k: v[k] for k in ("gate", "kind", "status", "reason")} for v in last.get("verdicts", [])],
            "failing": [v["gate"] for v in last.get("failing", [])],
            "open_incidents": p.incidents.open_incidents(),
            "actions": p.ledger.counts(),
            "loop": {**p.graph.stats(), "errors": s.cycle_errors, "last_error": s.last_error,
                     "eval_interval_s": p.config.sre.eval_interval_s},
            "recovery": p.recovery, "triage": {**p.triager.stats(), "method": "llm" if p.llm else "rules",
                                               "llm": p.llm.status().model_dump(mode="json") if p.llm else None},
            "playbooks": [{"name": pb.name, "version": pb.version} for pb in self._runner().playbooks],
            "playbooks_source": "policy module" if s.policy_in_force else "local",
            "rollout": _jsonable(p.rollout.status()),
            "known_good": p.known_good.rows(),
            "plans": p.plans.status(),
            "telemetry": {k: v for k, v in p.store.stats().items()
                          if k in ("accepted", "rejected", "shed", "commits", "committed_by_table",
                                   "visibility_lag_ms")},
            "alerts_active": len(p.alerts.active()),
            "uplink": p.uplink.summary(),
        }

    def _runner(self) -> PlaybookRunner:
        return self.state.runner or self.parts.runner

    def uplink_view(self) -> dict[str, Any]:
        return self.parts.uplink.console_view()

    def audit_event(self, kind: str, payload: dict[str, Any]) -> None:
        self.parts.audit.append(kind, payload)

    def incidents_list(self, status: str | None, limit: int) -> list[dict[str, Any]]:
        return self.parts.incidents.list(status=status, limit=limit)

    def incident(self, incident_id: str) -> dict[str, Any] | None:
        return self.parts.incidents.get(incident_id)

    def actions(self, status: str | None, kind: str | None, incident: str | None, limit: int) -> list[dict[str, Any]]:
        return self.parts.ledger.list(limit=limit, status=status, kind=kind, incident=incident)

    def action(self, action_id: str) -> dict[str, Any] | None:
        return self.parts.ledger.get(action_id)

    def gates(self) -> dict[str, Any]:
        last = self.parts.graph.last
        specs = {g.name: g.model_dump(mode="json") for g in self._runner().gates}
        return {"gates": specs, "verdicts": last.get("verdicts", []), "evaluated_at": last.get("now")}

    def audit_verify(self) -> dict[str, Any]:
        conn = self.parts.store.connection()  # a reader of its own: the audit writer keeps its connection
        try:
            report = verify_store(DuckDBAuditStore(conn, create=False), trusted_keys(self.parts.key.public))
        finally:
            conn.close()
        return report.as_dict()


def _jsonable(v: Any) -> Any:
    return v.model_dump(mode="json") if hasattr(v, "model_dump") else v
