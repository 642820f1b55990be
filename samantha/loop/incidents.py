"""Incidents: open on a playbook firing, group related failing verdicts, link actions, close when quiet.

Grouping key = scope and subject (`active:<bundle id>`, `canary:<bundle id>`, `host`), so
several playbooks firing about the same slot problem share one incident. An open
incident keeps absorbing failing verdicts of its gates while its subject still holds its
role (after a flip, the new active bundle's failures are another fault); it closes once none
of them failed for `close_after_s` and its actions are settled. Open incidents are cached in memory; every change is written
through to the `incidents` table.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from typing import Any

from samantha.core.clock import Clock
from samantha.loop.ledger import decode_rows
from samantha.telemetry.store import TelemetryStore

JSON_COLS = ("playbooks", "gates", "evidence", "actions", "refusals", "triage")
_SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}
MAX_REFUSALS = 50  # per incident: a flapping refusal must not grow a row without bound


def _dumps(v: Any) -> str:
    return json.dumps(v, default=str, separators=(",", ":"))


class IncidentBook:
    def __init__(self, store: TelemetryStore, clock: Clock) -> None:
        self.store, self.clock = store, clock
        self._lock = threading.Lock()
        self._open: dict[str, dict[str, Any]] = {}  # key -> row
        for row in decode_rows(store.read_arrow("SELECT * FROM incidents WHERE status = 'open'"), JSON_COLS):
            self._open[row["key"]] = row

    # ---- writes ----
    def _save(self, row: dict[str, Any], *, insert: bool = False) -> None:
        cols = ["id", "key", "title", "severity", "status", "opened_ts", "updated_ts", "last_fail_ts", "closed_ts",
                *JSON_COLS[:-1], "summary", "cause", "triage"]
        vals = [_dumps(row[c]) if c in JSON_COLS and row.get(c) is not None else row.get(c) for c in cols]
        if insert:
            self.store.write_sql(f"INSERT INTO incidents ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
                                 vals)
        else:
            sets = ", ".join(f"{c} = ?" for c in cols[1:])
            self.store.write_sql(f"UPDATE incidents SET {sets} WHERE id = ?", [*vals[1:], row["id"]])

    def record_firing(self, key: str, title: str, severity: str, playbook: str,
                      evidence: list[dict[str, Any]]) -> str:
        """Open (or join) the incident for `key`; returns its id."""
        now = self.clock.time()
        with self._lock:
            row = self._open.get(key)
            insert = row is None
            if row is None:
                row = {"id": f"inc-{uuid.uuid4().hex[:16]}", "key": key, "title": title, "severity": severity,
                       "status": "open", "opened_ts": now, "updated_ts": now, "last_fail_ts": now, "closed_ts": None,
                       "playbooks": [], "gates": [], "evidence": {}, "actions": [], "refusals": [],
                       "summary": None, "cause": None, "triage": None}
                self._open[key] = row
            if _SEVERITY_RANK.get(severity, 0) > _SEVERITY_RANK.get(row["severity"], 0):
                row["severity"] = severity
            if playbook not in row["playbooks"]:
                row["playbooks"].append(playbook)
            self._absorb(row, evidence, now)
            self._save(row, insert=insert)
            return row["id"]

    def _absorb(self, row: dict[str, Any], failing: list[dict[str, Any]], now: float) -> None:
        for v in failing:
            if v["gate"] not in row["gates"]:
                row["gates"].append(v["gate"])
            row["evidence"][v["gate"]] = v
        row["last_fail_ts"] = now
        row["updated_ts"] = now

    def absorb_failing(self, failing: list[dict[str, Any]], current: set[str] | None = None) -> list[str]:
        """Group failing verdicts into the open incidents that already watch those gates.

        `current`: the incident keys that describe what the Cube serves now (`active:<bundle>`, ...).
        After a flip, a gate over the active role judges another bundle: its failures are not the
        old incident's fault, so an incident whose subject no longer holds that role absorbs nothing."""
        if not failing:
            return []
        now = self.clock.time()
        touched = []
        with self._lock:
            for row in self._open.values():
                if current is not None and row["key"] not in current:
                    continue
                mine = [v for v in failing if v["gate"] in row["gates"]]
                if mine:
                    self._absorb(row, mine, now)
                    self._save(row)
                    touched.append(row["id"])
        return touched

    def link_action(self, incident_id: str, action_id: str) -> None:
        with self._lock:
            row = self._by_id(incident_id)
            if row is not None and action_id not in row["actions"]:
                row["actions"].append(action_id)
                row["updated_ts"] = self.clock.time()
                self._save(row)

    def add_refusal(self, incident_id: str, refusal: dict[str, Any]) -> None:
        with self._lock:
            row = self._by_id(incident_id)
            if row is not None:
                row["refusals"] = [*row["refusals"], refusal][-MAX_REFUSALS:]
                row["updated_ts"] = self.clock.time()
                self._save(row)

    def attach_triage(self, incident_id: str, cause: str, detail: dict[str, Any]) -> None:
        """Triage, attached whenever it is ready (open or closed incident alike): the cause (the rules',
        or the verified LLM tie-break) and the detail (advisory text only where it passed the verifier).
        It never touches `summary`, which is code-written from the evidence (`set_summary`)."""
        now = self.clock.time()
        with self._lock:
            row = self._by_id(incident_id)
            if row is not None:
                row.update(cause=cause, triage=detail, updated_ts=now)
                self._save(row)
                return
        self.store.write_sql("UPDATE incidents SET cause = ?, triage = ?::JSON, updated_ts = ? "
                             "WHERE id = ?", [cause, _dumps(detail), now, incident_id])

    def set_summary(self, incident_id: str, summary: str) -> bool:
        """The code-written summary (samantha/reporting/incident_summary.py); written only when it changed."""
        with self._lock:
            row = self._by_id(incident_id)
            if row is not None:
                if row.get("summary") == summary:
                    return False
                row["summary"] = summary
                self._save(row)
                return True
        self.store.write_sql("UPDATE incidents SET summary = ? WHERE id = ? AND summary IS DISTINCT FROM ?",
                             [summary, incident_id, summary])
        return True

    def close_quiet(self, quiet_s: float, unsettled: set[str] | None = None,
                    summary_of: Callable[[dict[str, Any]], str] | None = None) -> list[str]:
        """Close incidents whose gates have not failed for `quiet_s` and whose actions are all settled
        (none of them in `unsettled`: intent or done, not yet verified). `closed_ts` is the resolution time.
        `summary_of` writes the closed incident's summary in the same save, so no reader sees it closed
        with a summary that still says open."""
        now = self.clock.time()
        closed = []
        with self._lock:
            for key, row in list(self._open.items()):
                if unsettled and any(a in unsettled for a in row["actions"]):
                    continue
                if now - row["last_fail_ts"] >= quiet_s:
                    row.update(status="closed", closed_ts=now, updated_ts=now)
                    if summary_of is not None:
                        row["summary"] = summary_of(json.loads(_dumps(row)))
                    self._save(row)
                    del self._open[key]
                    closed.append(row["id"])
        return closed

    def _by_id(self, incident_id: str) -> dict[str, Any] | None:
        return next((r for r in self._open.values() if r["id"] == incident_id), None)

    # ---- reads ----
    def open_incidents(self) -> list[dict[str, Any]]:
        with self._lock:
            return [json.loads(_dumps(r)) for r in self._open.values()]

    def get(self, incident_id: str) -> dict[str, Any] | None:
        rows = decode_rows(self.store.read_arrow("SELECT * FROM incidents WHERE id = ?", [incident_id]), JSON_COLS)
        return rows[0] if rows else None

    def list(self, *, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        sql, params = "SELECT * FROM incidents", []
        if status is not None:
            sql += " WHERE status = ?"
            params.append(status)
        return decode_rows(self.store.read_arrow(sql + " ORDER BY opened_ts DESC LIMIT ?", [*params, int(limit)]),
                           JSON_COLS)
