"""The injection ledger: every fault is written here, with its revert and a TTL, BEFORE it goes in.

States: intent (written, maybe injected: a crash can fall between) -> active -> reverted,
or revert_failed (retried by the next sweep). Anything not reverted is open; a restart
(`recover`) and the periodic sweep of expired entries revert it. Reverts are idempotent,
so reverting an intent that never got injected is harmless.
Stored in the chaos SQLite file (table `injections`).
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from samantha.chaos.db import ChaosTables
from samantha.core.clock import REAL_CLOCK, Clock

OPEN_STATES = ("intent", "active", "revert_failed")
SCHEMA = """
CREATE TABLE IF NOT EXISTS injections (
    id TEXT PRIMARY KEY,
    experiment_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    params TEXT NOT NULL,
    revert TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    injected_at REAL,
    reverted_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS injections_state ON injections(state);
CREATE INDEX IF NOT EXISTS injections_experiment ON injections(experiment_id);
"""


class Ledger(ChaosTables):
    def __init__(self, path: str | Path, clock: Clock = REAL_CLOCK) -> None:
        super().__init__(path, SCHEMA)
        self.clock = clock

    def intend(self, experiment_id: str, kind: str, target: str, params: dict[str, Any], revert: dict[str, Any],
               ttl_s: float) -> str:
        """Record the intent (durably, synchronous=FULL) and return its id. Call before injecting."""
        iid = "inj-" + uuid.uuid4().hex[:16]
        now = self.clock.time()
        self._exec("INSERT INTO injections (id, experiment_id, kind, target, params, revert, state, created_at, "
                   "expires_at) VALUES (?, ?, ?, ?, ?, ?, 'intent', ?, ?)",
                   (iid, experiment_id, kind, target, json.dumps(params), json.dumps(revert), now, now + ttl_s))
        return iid

    def update_revert(self, iid: str, revert: dict[str, Any]) -> None:
        self._exec("UPDATE injections SET revert = ? WHERE id = ?", (json.dumps(revert), iid))

    def mark_active(self, iid: str, detail: str | None = None, at: float | None = None) -> None:
        """`at`: when it went in, if known better than now (a native run's journal says when its action ended)."""
        self._exec("UPDATE injections SET state = 'active', injected_at = ?, detail = ? WHERE id = ? "
                   "AND state = 'intent'", (self.clock.time() if at is None else at, detail, iid))

    def mark_reverted(self, iid: str, detail: str) -> None:
        self._exec("UPDATE injections SET state = 'reverted', reverted_at = ?, detail = ?, attempts = attempts + 1 "
                   "WHERE id = ?", (self.clock.time(), detail, iid))

    def mark_failed(self, iid: str, detail: str) -> None:
        self._exec("UPDATE injections SET state = 'revert_failed', detail = ?, attempts = attempts + 1 WHERE id = ?",
                   (detail, iid))

    def get(self, iid: str) -> dict[str, Any] | None:
        row = self._exec("SELECT * FROM injections WHERE id = ?", (iid,)).fetchone()
        return _row(row) if row else None

    def entries(self, experiment_id: str | None = None, *, open_only: bool = False) -> list[dict[str, Any]]:
        sql, args = "SELECT * FROM injections WHERE 1=1", []
        if experiment_id is not None:
            sql += " AND experiment_id = ?"
            args.append(experiment_id)
        if open_only:
            sql += f" AND state IN ({', '.join('?' * len(OPEN_STATES))})"
            args += OPEN_STATES
        return [_row(r) for r in self._exec(sql + " ORDER BY created_at, rowid", tuple(args)).fetchall()]

    def expired(self) -> list[dict[str, Any]]:
        now = self.clock.time()
        return [e for e in self.entries(open_only=True) if e["expires_at"] <= now]

    def revert_open(self, reverter: Callable[[dict[str, Any]], str], *, experiment_id: str | None = None,
                    only_expired: bool = False) -> list[dict[str, Any]]:
        """Revert open entries, newest first (undo in reverse). Returns what was done per entry."""
        todo = self.expired() if only_expired else self.entries(experiment_id, open_only=True)
        out = []
        for e in reversed(todo):
            try:
                detail = reverter(e["revert"])
                self.mark_reverted(e["id"], detail)
                out.append({"id": e["id"], "kind": e["kind"], "reverted": True, "detail": detail})
            except Exception as ex:  # one failed revert must not stop the others; the next sweep retries it
                self.mark_failed(e["id"], f"{type(ex).__name__}: {ex}"[:500])
                out.append({"id": e["id"], "kind": e["kind"], "reverted": False, "detail": str(ex)[:500]})
        return out

    def reverted_kinds(self) -> set[str]:
        """Kinds whose revert has worked at least once on this Cube."""
        rows = self._exec("SELECT DISTINCT kind FROM injections WHERE state = 'reverted'").fetchall()
        return {r[0] for r in rows}


def _row(r: sqlite3.Row) -> dict[str, Any]:
    d = dict(r)
    d["params"] = json.loads(d["params"])
    d["revert"] = json.loads(d["revert"])
    return d
