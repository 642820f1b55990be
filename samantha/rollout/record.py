"""The rollout controller's persisted state: one record per rollout, appended on every transition.

Stored in the daemon's DuckDB file, table `rollouts` (append-only: each transition adds a
row with the whole record as JSON, so the table is also the rollout's history). On start
the controller reads the newest row back and resumes from it.
"""

from __future__ import annotations

import json
import threading
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from samantha.core.domain import RolloutMark
from samantha.gates.rollout_policy import StepVerdict
from samantha.loop.tables import SqlStore

Phase = Literal["idle", "loading", "shadow", "step", "soak", "flipping", "promoted", "aborted", "failed"]
TERMINAL: frozenset[str] = frozenset({"idle", "promoted", "aborted", "failed"})
DecisionKind = Literal["load", "shadow_on", "shadow_off", "weights", "flip", "quarantine", "alert", "abort", "promote",
                       "hold", "ask", "approved", "denied"]
MAX_DECISIONS = 200


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Decision(_M):
    """One thing the controller did or refused to do, with the evidence it acted on."""

    ts: float
    kind: DecisionKind
    target: str
    reason: str
    request_id: str | None = None
    result: Literal["done", "failed", "refused", "noted"] = "done"
    detail: str = ""
    duration_ms: float | None = None
    corrective: bool = Field(False, description="taken against a regression (snap back, quarantine, alert), "
                             "not rollout progress: in a fault-free window it is a false action")
    evidence: StepVerdict | None = None


class Pending(_M):
    """A Cube call whose intent is recorded and whose result is not: a restart re-sends it with the
    same request id, so the Cube completes it once and never applies it twice."""

    op: Literal["load", "shadow", "weights", "flip", "quarantine"]
    request_id: str
    args: dict[str, Any] = Field(default_factory=dict)
    ts: float
    action_id: str | None = None


class RolloutRecord(_M):
    id: str
    request_id: str = Field(description="the caller's request id for start (idempotent start)")
    bundle_ref: str
    bundle_path: str
    bundle_id: str
    bundle_label: str
    expires_at: float
    policy_name: str
    policy_version: int
    steps: list[float]
    phase: Phase
    step: int | None = Field(None, description="index into steps while stepping")
    started_at: float
    updated_at: float
    ended_at: float | None = None
    rollout_start: float | None = Field(None, description="first canary traffic: anchors the sequential gates")
    step_start: float | None = None
    seq: int = Field(0, description="mutations issued so far: part of every request id")
    rev: int = Field(0, description="persisted revision")
    pending: Pending | None = None
    shadow_on: bool = False
    snapped: bool = Field(False, description="weights were sent back to the active slot")
    prior_active_bundle: str | None = None
    last_known_good: str | None = None
    quarantined: bool = False
    held_until: float | None = Field(None, description="a hold_rollout action: no step advances before this")
    approval_id: str | None = Field(None, description="a grey zone: the approval item a human is asked to decide")
    reason: str = ""
    step_verdicts: list[StepVerdict] = Field(default_factory=list, description="the deciding verdict of each phase")
    decisions: list[Decision] = Field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.phase not in TERMINAL

    def mark(self) -> RolloutMark:
        """What the safety kernel's view reads of this record (samantha/kernel/view.py)."""
        return RolloutMark(rollout_id=self.id, bundle_id=self.bundle_id, phase=self.phase, active=self.active)

    @property
    def weight(self) -> float:
        if self.phase in ("step", "soak", "flipping") and self.step is not None and not self.snapped:
            return self.steps[self.step]
        return 0.0


class RolloutStatus(_M):
    phase: Phase
    weight: float = Field(description="percent of live traffic the rollout put on the standby")
    rollout: RolloutRecord | None = None
    last_verdict: StepVerdict | None = Field(None, description="the newest judgement (not persisted every tick)")
    busy: bool = Field(False, description="a start/abort call holds the controller right now")


class RolloutStore(Protocol):
    def save(self, rec: RolloutRecord) -> None: ...

    def latest(self) -> RolloutRecord | None: ...


class MemoryRolloutStore:
    """For unit tests of the state machine; keeps every revision like the table does."""

    def __init__(self) -> None:
        self.rows: list[str] = []

    def save(self, rec: RolloutRecord) -> None:
        self.rows.append(rec.model_dump_json())

    def latest(self) -> RolloutRecord | None:
        return RolloutRecord.model_validate_json(self.rows[-1]) if self.rows else None


ROLLOUTS_DDL = """CREATE TABLE IF NOT EXISTS rollouts (
    rollout_id VARCHAR NOT NULL, rev BIGINT NOT NULL, ts DOUBLE NOT NULL, phase VARCHAR NOT NULL,
    bundle_id VARCHAR NOT NULL, doc JSON NOT NULL
)"""


class DuckRolloutStore:
    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        store.write_sql(ROLLOUTS_DDL)

    def save(self, rec: RolloutRecord) -> None:
        with self._lock:
            self.store.write_sql("INSERT INTO rollouts VALUES (?, ?, ?, ?, ?, ?)",
                                 [rec.id, rec.rev, rec.updated_at, rec.phase, rec.bundle_id, rec.model_dump_json()])

    def latest(self) -> RolloutRecord | None:
        t = self.store.read_arrow("SELECT doc FROM rollouts ORDER BY ts DESC, rev DESC LIMIT 1")
        if not t.num_rows:
            return None
        doc = t.column(0)[0].as_py()
        return RolloutRecord.model_validate(json.loads(doc) if isinstance(doc, str) else doc)

    def history(self, rollout_id: str) -> list[RolloutRecord]:
        t = self.store.read_arrow("SELECT doc FROM rollouts WHERE rollout_id = ? ORDER BY rev", [rollout_id])
        return [RolloutRecord.model_validate_json(d) for d in t.column(0).to_pylist()]
