"""Write-ahead action records: the intent is stored before the Cube is called, the result after.

`ActionRecorder` is the one seam the rollout controller records through, so the daemon can hand
it the shared `actions` table's recorder. `DuckActionLog` is the controller's own log until then:
table `rollout_actions` in the daemon's DuckDB file.
"""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any, Literal, Protocol

from samantha.core.clock import REAL_CLOCK, Clock
from samantha.kernel.policy import ActionRecord
from samantha.loop.tables import SqlStore

ActionStatus = Literal["done", "failed", "refused"]


class ActionRecorder(Protocol):
    def intent(self, *, kind: str, target: str, reason: str, request_id: str, evidence: dict[str, Any]) -> str: ...

    def finish(self, action_id: str, status: ActionStatus, detail: str = "") -> None: ...

    def history(self) -> list[ActionRecord]:
        """Applied actions (done) the safety kernel's limits count."""
        ...


KERNEL_KINDS = frozenset({"abort_rollout", "advance_rollout", "flip", "quarantine", "alert", "hold_rollout"})


class MemoryActionLog:
    def __init__(self, clock: Clock = REAL_CLOCK) -> None:
        self.clock = clock
        self.rows: dict[str, dict[str, Any]] = {}

    def intent(self, *, kind: str, target: str, reason: str, request_id: str, evidence: dict[str, Any]) -> str:
        aid = uuid.uuid4().hex[:16]
        self.rows[aid] = {"ts": self.clock.time(), "kind": kind, "target": target, "reason": reason,
                          "request_id": request_id, "status": "intent", "evidence": evidence, "detail": ""}
        return aid

    def finish(self, action_id: str, status: ActionStatus, detail: str = "") -> None:
        # an intent from before a restart is unknown here: record the outcome anyway
        self.rows.setdefault(action_id, {"ts": self.clock.time(), "kind": "?", "target": "?", "reason": "",
                                         "request_id": "", "evidence": {}})
        self.rows[action_id].update(status=status, detail=detail, done_ts=self.clock.time())

    def history(self) -> list[ActionRecord]:
        return [ActionRecord(ts=r["ts"], kind=r["kind"], requested_by="rollout", target=r["target"])
                for r in self.rows.values() if r["status"] == "done" and r["kind"] in KERNEL_KINDS]


ACTIONS_DDL = """CREATE TABLE IF NOT EXISTS rollout_actions (
    action_id VARCHAR NOT NULL, ts DOUBLE NOT NULL, kind VARCHAR NOT NULL, target VARCHAR NOT NULL,
    reason VARCHAR NOT NULL, request_id VARCHAR NOT NULL, status VARCHAR NOT NULL, detail VARCHAR NOT NULL,
    evidence JSON
)"""


class DuckActionLog:
    """Append-only: an intent row, then a row with the outcome (same action_id)."""

    def __init__(self, store: SqlStore, clock: Clock = REAL_CLOCK) -> None:
        self.store, self.clock = store, clock
        self._lock = threading.Lock()
        store.write_sql(ACTIONS_DDL)
        t = store.read_arrow("SELECT ts, kind, target FROM rollout_actions WHERE status = 'done' "
                             "AND ts > ? ORDER BY ts", [clock.time() - 86400])
        self._history = [ActionRecord(ts=ts, kind=k, requested_by="rollout", target=tg)
                         for ts, k, tg in zip(*(t.column(i).to_pylist() for i in range(3)), strict=True)
                         if k in KERNEL_KINDS]
        self._open: dict[str, tuple[float, str, str, str, str]] = {}

    def intent(self, *, kind: str, target: str, reason: str, request_id: str, evidence: dict[str, Any]) -> str:
        aid, ts = uuid.uuid4().hex[:16], self.clock.time()
        with self._lock:
            self.store.write_sql("INSERT INTO rollout_actions VALUES (?, ?, ?, ?, ?, ?, 'intent', '', ?)",
                                 [aid, ts, kind, target, reason, request_id, json.dumps(evidence, default=str)])
            self._open[aid] = (ts, kind, target, reason, request_id)
        return aid

    def finish(self, action_id: str, status: ActionStatus, detail: str = "") -> None:
        with self._lock:
            opened = self._open.pop(action_id, None)
            if opened is None:  # the intent was written before a restart
                t = self.store.read_arrow("SELECT ts, kind, target, reason, request_id FROM rollout_actions "
                                          "WHERE action_id = ? AND status = 'intent'", [action_id]).to_pylist()
                opened = tuple(t[0].values()) if t else (self.clock.time(), "?", "?", "", "")
            ts, kind, target, reason, rid = opened
            now = self.clock.time()
            self.store.write_sql("INSERT INTO rollout_actions VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)",
                                 [action_id, now, kind, target, reason, rid, status, detail])
            if status == "done" and kind in KERNEL_KINDS:
                self._history.append(ActionRecord(ts=now, kind=kind, requested_by="rollout", target=target))

    def history(self) -> list[ActionRecord]:
        with self._lock:
            return list(self._history)
