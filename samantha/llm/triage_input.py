"""What triage sees of an incident: verdicts, evidence, recent changes.

The SRE loop builds this from its incident record. Free text here (gate
details, log lines, bundle names) comes from telemetry and may be hostile; it
reaches a prompt only through `quote_data`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from samantha.core.domain import Record, Severity, SlotRole

VerdictKind = Literal["error_rate", "latency", "divergence", "drift", "resource", "availability", "policy", "other"]
ChangeKind = Literal["deploy", "rollout_step", "flip", "config", "policy", "fault", "other"]


class VerdictEvidence(Record):
    gate: str = Field(min_length=1, description="gate name")
    kind: VerdictKind
    breached: bool = True
    slot: SlotRole | None = None
    bundle: str | None = None
    metric: str | None = None
    observed: float | None = None
    threshold: float | None = None
    detail: str = ""


class RecentChange(Record):
    age_s: float = Field(ge=0, description="seconds before the incident opened")
    kind: ChangeKind
    bundle: str | None = None
    detail: str = ""


class TriageInput(Record):
    incident_id: str = Field(min_length=1)
    severity: Severity = "critical"
    active_bundle: str | None = None
    standby_bundle: str | None = None
    canary_weight: float | None = Field(None, ge=0, le=1)
    verdicts: list[VerdictEvidence] = Field(default_factory=list)
    changes: list[RecentChange] = Field(default_factory=list)
    evidence: list[str] = Field(default_factory=list, description="log lines, metric labels: untrusted text")
    fast_path_action: str | None = Field(None, description="what the playbook already did (context only)")

    def prompt_data(self) -> dict:
        """The fields the model sees (quoted as data by the prompt renderer)."""
        return self.model_dump(mode="json", exclude={"incident_id"}, exclude_none=True, exclude_defaults=True)
