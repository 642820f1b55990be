"""The write-ahead action ledger (`actions` table): an intent is durable before the Cube is called.

The row id is the Cube request id, so a call retried after a crash is idempotent at the
Cube. Status moves intent -> done -> verified, or to failed / reverted; the ledger never
deletes a row. Reads go through the store's thread-local cursors; writes through
`write_sql` (auto-committed, serialised with the telemetry group commit).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, get_args

from samantha.core.clock import Clock
from samantha.core.domain import ActionKind
from samantha.kernel.policy import ActionRecord
from samantha.loop.tables import ACTION_STATUSES
from samantha.telemetry.store import TelemetryStore

JSON_COLS = ("proposed", "evidence", "before", "result")
APPLIED = ("intent", "done", "verified")  # count against rate limits: they reached, or may reach, the Cube


def _dumps(v: Any) -> str:
    return json.dumps(v, default=str, separators=(",", ":"))


def decode_rows(table: Any, json_cols: Iterable[str]) -> list[dict[str, Any]]:
    rows = table.to_pylist()
    for r in rows:
        for c in json_cols:
            if isinstance(r.get(c), str):
                r[c] = json.loads(r[c])
    return rows


class ActionLedger:
    def __init__(self, store: TelemetryStore, clock: Clock) -> None:
        self.store, self.clock = store, clock
        self.version = 0  # bumped on every write: lets a reader know nothing changed without a query

    def write_intent(self, row: dict[str, Any]) -> bool:
        """Insert the intent unless a row with that id exists (a resumed node). True when inserted."""
        if self.get(row["id"]) is not None:
            return False
        now = self.clock.time()
        self.version += 1
        self.store.write_sql(
            "INSERT INTO actions (id, request_id, kind, target, reason, requested_by, playbook, playbook_version, "
            "incident_id, proposed, evidence, before, result, status, created_ts, updated_ts) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, 'intent', ?, ?)",
            [row["id"], row["id"], row["kind"], row["target"], row["reason"], row["requested_by"],
             row.get("playbook"), row.get("playbook_version"), row.get("incident_id"), _dumps(row["proposed"]),
             _dumps(row.get("evidence", [])), _dumps(row.get("before", {})), row.get("created_ts", now), now])
        return True

    def mark(self, action_id: str, status: str, result: dict[str, Any] | None = None) -> None:
        if status not in ACTION_STATUSES:
            raise ValueError(f"unknown action status {status!r}")
        now = self.clock.time()
        stamp = {"done": ", done_ts = ?", "verified": ", verified_ts = ?"}.get(status, "")
        params: list[Any] = [status, _dumps(result) if result is not None else None, now]
        if stamp:
            params.append(now)
        self.version += 1
        self.store.write_sql(f"UPDATE actions SET status = ?, result = coalesce(?::JSON, result), updated_ts = ?"
                             f"{stamp} WHERE id = ?", [*params, action_id])

    def get(self, action_id: str) -> dict[str, Any] | None:
        rows = decode_rows(self.store.read_arrow("SELECT * FROM actions WHERE id = ?", [action_id]), JSON_COLS)
        return rows[0] if rows else None

    def with_status(self, statuses: Sequence[str]) -> list[dict[str, Any]]:
        marks = ", ".join("?" for _ in statuses)
        return decode_rows(self.store.read_arrow(
            f"SELECT * FROM actions WHERE status IN ({marks}) ORDER BY created_ts", list(statuses)), JSON_COLS)

    def list(self, *, limit: int = 100, status: str | None = None, kind: str | None = None,
             incident: str | None = None) -> list[dict[str, Any]]:
        where, params = [], []
        for col, val in (("status", status), ("kind", kind), ("incident_id", incident)):
            if val is not None:
                where.append(f"{col} = ?")
                params.append(val)
        sql = "SELECT * FROM actions" + (f" WHERE {' AND '.join(where)}" if where else "")
        sql += " ORDER BY created_ts DESC LIMIT ?"
        return decode_rows(self.store.read_arrow(sql, [*params, int(limit)]), JSON_COLS)

    def history(self, since: float) -> list[ActionRecord]:
        """Actions that reached (or may still reach) the Cube since `since`: what the policy limits count."""
        kinds = list(get_args(ActionKind))  # the rollout's own mechanics (load, weights, shadow) are not limited
        t = self.store.read_arrow(
            "SELECT created_ts, kind, requested_by, playbook, target FROM actions WHERE created_ts >= ? "
            "AND status IN ('intent', 'done', 'verified') AND list_contains(?, kind) ORDER BY created_ts",
            [since, kinds])
        return [ActionRecord(ts=r["created_ts"], kind=r["kind"], requested_by=r["requested_by"],
                             playbook=r["playbook"], target=r["target"]) for r in t.to_pylist()]

    def counts(self) -> dict[str, int]:
        t = self.store.read_arrow("SELECT status, count(*) AS n FROM actions GROUP BY status")
        return {r["status"]: int(r["n"]) for r in t.to_pylist()}
