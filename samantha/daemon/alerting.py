"""The daemon's alert glue: what the loop, the triager and the rollout controller tell the `AlertManager`."""

from __future__ import annotations

from typing import Any

from samantha.uplink.alerts import AlertManager


class IncidentAlerts:
    """Alerts keyed by incident: fired for an `alert` action, annotated by triage, resolved with the incident."""

    def __init__(self, alerts: AlertManager) -> None:
        self.alerts = alerts

    def fire(self, row: dict[str, Any]) -> None:
        """An `alert` action from the ledger (the loop's `SreDeps.alert`)."""
        sev = (row.get("proposed") or {}).get("severity") or "warning"
        labels = {"playbook": row.get("playbook") or "sre", "incident": row.get("incident_id") or "-"}
        key = f"incident:{row.get('incident_id')}:{sev}" if row.get("incident_id") else None
        self.alerts.fire(f"samantha_{(row.get('playbook') or 'sre').replace('-', '_')}", sev,
                         str(row.get("reason", ""))[:500], labels, key=key)

    def resolve(self, incident_id: str) -> None:
        for a in self.alerts.active():
            if a.labels.get("incident") == incident_id:
                self.alerts.resolve(a.key)

    def annotate(self, incident_id: str, summary: str, cause: str) -> None:
        """The LLM triage's summary and probable cause on the incident's active alerts."""
        for a in self.alerts.active():
            if a.labels.get("incident") == incident_id:
                self.alerts.fire(a.name, a.severity, a.summary, a.labels, key=a.key,
                                 annotations={"triage_summary": summary[:1000], "probable_cause": cause})

    def rollout(self, severity: str, summary: str, evidence: dict[str, Any]) -> None:
        """The rollout controller's `AlertSink`."""
        self.alerts.fire("samantha_rollout", severity, summary[:500], {"source": "rollout"})  # type: ignore[arg-type]
