"""The daemon's alert glue: what the loop, the triager, the rollout controller and the bundle intake tell the
`AlertManager`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from samantha.loop.incidents import IncidentBook
from samantha.loop.ledger import ActionLedger
from samantha.reporting.incident_summary import summarize
from samantha.uplink.alerts import AlertManager


class IncidentAlerts:
    """Alerts keyed by incident: fired for an `alert` action, annotated by triage, resolved with the incident.
    The headline is the incident's code-written summary (samantha/reporting/incident_summary.py)."""

    def __init__(self, alerts: AlertManager, incidents: IncidentBook, ledger: ActionLedger) -> None:
        self.alerts, self.incidents, self.ledger = alerts, incidents, ledger

    def summary(self, incident_id: str | None) -> str | None:
        inc = self.incidents.get(incident_id) if incident_id else None
        return summarize(inc, self.ledger.list(incident=incident_id, limit=50)).text if inc else None

    def fire(self, row: dict[str, Any]) -> None:
        """An `alert` action from the ledger (the loop's `SreDeps.alert`)."""
        sev = (row.get("proposed") or {}).get("severity") or "warning"
        labels = {"playbook": row.get("playbook") or "sre", "incident": row.get("incident_id") or "-"}
        key = f"incident:{row.get('incident_id')}:{sev}" if row.get("incident_id") else None
        reason = str(row.get("reason", ""))[:500]
        self.alerts.fire(f"samantha_{(row.get('playbook') or 'sre').replace('-', '_')}", sev,
                         (self.summary(row.get("incident_id")) or reason)[:1000], labels, key=key,
                         annotations={"reason": reason})

    def resolve(self, incident_id: str) -> None:
        final = self.summary(incident_id)  # the resolved notice carries the verified effect
        for a in self.alerts.active():
            if a.labels.get("incident") == incident_id:
                if final:
                    self.alerts.fire(a.name, a.severity, final[:1000], a.labels, key=a.key,
                                     annotations={k: v for k, v in a.annotations.items() if k != "summary"})
                self.alerts.resolve(a.key)

    def annotate(self, incident_id: str, summary: str, cause: str) -> None:
        """The LLM triage's summary and probable cause on the incident's active alerts."""
        for a in self.alerts.active():
            if a.labels.get("incident") == incident_id:
                self.alerts.fire(a.name, a.severity, a.summary, a.labels, key=a.key,
                                 annotations={**a.annotations, "triage_advisory": summary[:1000],
                                              "probable_cause": cause})

    def rollout(self, severity: str, summary: str, evidence: dict[str, Any]) -> None:
        """The rollout controller's `AlertSink`."""
        self.alerts.fire("samantha_rollout", severity, summary[:500], {"source": "rollout"})  # type: ignore[arg-type]


class ApprovalAlerts:
    """An escalated experiment waits for an operator: one alert per approval request, linking to its console page
    (`api_url()`: the daemon's URL, known once the API has bound), resolved when it is decided or expires."""

    def __init__(self, alerts: AlertManager, api_url: Callable[[], str | None]) -> None:
        self.alerts, self.api_url = alerts, api_url

    @staticmethod
    def key(approval_id: str) -> str:
        return f"approval:{approval_id}"

    def requested(self, record: dict[str, Any]) -> None:
        """An approval queue's `on_record` (the request as the hub queues it)."""
        aid = record["id"]
        link = f"{self.api_url() or ''}/console/approvals/{aid}"
        why = "; ".join(f"[{r['code']}] {r['message']}" for r in record.get("reasons") or [])
        self.alerts.fire("samantha_approval_requested", "warning",
                         f"approval needed: {record.get('kind')} on {record.get('target')}: {why}"[:1000],
                         {"approval": aid, "source": "chaos"}, key=self.key(aid),
                         annotations={"console_url": link, "expires_at": str(record.get("expires_at"))})

    def closed(self, approval_id: str, status: str) -> None:
        """An approval queue's `on_closed`: decided or expired."""
        for a in self.alerts.active():
            if a.key == self.key(approval_id):
                self.alerts.fire(a.name, a.severity, f"{a.summary[:900]} ({status})", a.labels, key=a.key,
                                 annotations={**{k: v for k, v in a.annotations.items() if k != "summary"},
                                              "outcome": status})
                self.alerts.resolve(a.key)


class SupplyEvents:
    """The bundle intake's `on_event` (samantha/rollout/bundle_check.py): every refusal and supply-hold change is
    audited; a refusal is alerted (critical for TUF metadata: an attack or a stale feed); a hold change
    re-evaluates safe mode at once (`safe_mode()`), so fresh metadata lifts it before the rollout goes on."""

    KEY = "supply:refused"

    def __init__(self, alerts: AlertManager, audit: Any, safe_mode: Callable[[], Any]) -> None:
        self.alerts, self.audit, self.safe_mode = alerts, audit, safe_mode

    def __call__(self, event: str, record: dict[str, Any]) -> None:
        self.audit.append(event, record)
        if event == "tuf_verified":  # fresh trusted metadata: a stale-trust hold may have ended
            self.safe_mode()
            return
        if event == "bundle_refused":
            rule = str(record.get("rule") or record.get("kind"))  # an unreadable SBOM/attestation has no rule
            self.alerts.fire("samantha_bundle_refused", "critical" if rule.startswith("tuf") else "warning",
                             f"bundle refused under rule {rule}: {record.get('reason')}"[:1000],
                             {"source": "supply", "rule": rule, "kind": str(record.get("kind"))},
                             key=f"{self.KEY}:{rule}", annotations={"bundle": str(record.get("bundle"))})
            return
        if event == "supply_hold_cleared":
            self.alerts.resolve(f"{self.KEY}:tuf-fresh")
        self.safe_mode()
