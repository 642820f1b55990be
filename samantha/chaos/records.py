"""Experiments, findings, learned gates and the upward outbox, in the chaos SQLite file.

- experiments: written (state running) before the runner starts, so a crash leaves a trace;
- findings: what a run showed, linked to its experiment and journal hash;
- learned_gates: gates compiled from findings, loaded into the local registry at start;
- proposed_gates (outbox): the same gates queued for the hub, which decides fleet-wide.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from samantha.chaos.db import ChaosTables
from samantha.gates.registry import GATE_ADAPTER, Provenance, RegisteredGate

SCHEMA = """
CREATE TABLE IF NOT EXISTS experiments (
    id TEXT PRIMARY KEY, title TEXT NOT NULL, proposal TEXT NOT NULL, preflight TEXT NOT NULL,
    state TEXT NOT NULL, kind TEXT, target TEXT, started_at REAL NOT NULL, ended_at REAL,
    runner_pid INTEGER, runner_create REAL, document_path TEXT, journal_path TEXT, journal_sha256 TEXT,
    summary TEXT, approval_id TEXT
);
CREATE TABLE IF NOT EXISTS findings (
    id TEXT PRIMARY KEY, experiment_id TEXT NOT NULL, kind TEXT NOT NULL, text TEXT NOT NULL,
    data TEXT NOT NULL, journal_sha256 TEXT, created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS learned_gates (
    name TEXT PRIMARY KEY, spec TEXT NOT NULL, provenance TEXT NOT NULL, finding_id TEXT, created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS proposed_gates (
    id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, spec TEXT NOT NULL, provenance TEXT NOT NULL,
    finding TEXT NOT NULL, created_at REAL NOT NULL, shipped_at REAL
);
"""
FINAL_STATES = ("completed", "failed", "aborted", "crashed", "timeout")


class ChaosRecords(ChaosTables):
    def __init__(self, path: str | Path) -> None:
        super().__init__(path, SCHEMA)

    # --- experiments ------------------------------------------------------------------------
    def start_experiment(self, eid: str, title: str, proposal: dict, preflight: dict, kind: str, target: str,
                         now: float, approval_id: str | None = None) -> None:
        self._exec("INSERT INTO experiments (id, title, proposal, preflight, state, kind, target, started_at, "
                   "approval_id) VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?)",
                   (eid, title, json.dumps(proposal), json.dumps(preflight), kind, target, now, approval_id))

    def set_runner(self, eid: str, pid: int, create_time: float, document_path: str) -> None:
        self._exec("UPDATE experiments SET runner_pid = ?, runner_create = ?, document_path = ? WHERE id = ?",
                   (pid, create_time, document_path, eid))

    def finish_experiment(self, eid: str, state: str, now: float, journal_path: str | None,
                          journal_sha256: str | None, summary: dict[str, Any]) -> None:
        self._exec("UPDATE experiments SET state = ?, ended_at = ?, journal_path = ?, journal_sha256 = ?, "
                   "summary = ? WHERE id = ?", (state, now, journal_path, journal_sha256,
                                                 json.dumps(summary, default=str), eid))

    def running(self) -> list[dict[str, Any]]:
        return [self._exp(r) for r in self._exec("SELECT * FROM experiments WHERE state = 'running'").fetchall()]

    def experiment(self, eid: str) -> dict[str, Any] | None:
        r = self._exec("SELECT * FROM experiments WHERE id = ?", (eid,)).fetchone()
        return self._exp(r) if r else None

    def experiments(self, limit: int = 100) -> list[dict[str, Any]]:
        return [self._exp(r) for r in self._exec("SELECT * FROM experiments ORDER BY started_at DESC LIMIT ?",
                                                 (limit,)).fetchall()]

    def last_run_of(self) -> dict[tuple[str, str], float]:
        """(kind, target) -> last start time: how recently each path was exercised."""
        rows = self._exec("SELECT kind, target, max(started_at) FROM experiments GROUP BY kind, target").fetchall()
        return {(r[0], r[1]): r[2] for r in rows}

    def keys_run_since(self, since: float) -> set[str]:
        rows = self._exec("SELECT proposal FROM experiments WHERE started_at >= ?", (since,)).fetchall()
        out = set()
        for (p,) in rows:
            d = json.loads(p)
            out.add(d.get("key", ""))
        return out

    def drills_since(self, since: float) -> list[float]:
        rows = self._exec("SELECT started_at FROM experiments WHERE kind = 'rollback_drill' AND started_at >= ?",
                          (since,)).fetchall()
        return [r[0] for r in rows]

    @staticmethod
    def _exp(r: sqlite3.Row) -> dict[str, Any]:
        d = dict(r)
        for k in ("proposal", "preflight", "summary"):
            if d.get(k):
                d[k] = json.loads(d[k])
        return d

    # --- findings and gates -----------------------------------------------------------------
    def add_finding(self, fid: str, eid: str, kind: str, text: str, data: dict[str, Any], journal_sha256: str | None,
                    now: float) -> None:
        self._exec("INSERT OR REPLACE INTO findings VALUES (?, ?, ?, ?, ?, ?, ?)",
                   (fid, eid, kind, text, json.dumps(data, default=str), journal_sha256, now))

    def findings(self, experiment_id: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        sql, args = "SELECT * FROM findings", ()
        if experiment_id:
            sql, args = sql + " WHERE experiment_id = ?", (experiment_id,)
        rows = self._exec(sql + " ORDER BY created_at DESC LIMIT ?", (*args, limit)).fetchall()
        return [{**dict(r), "data": json.loads(r["data"])} for r in rows]

    def learned_version(self, name: str) -> int:
        r = self._exec("SELECT provenance FROM learned_gates WHERE name = ?", (name,)).fetchone()
        return int(json.loads(r[0]).get("version", 0)) if r else 0

    def add_learned_gate(self, entry: RegisteredGate, finding: dict[str, Any], now: float) -> None:
        """Store locally (active from now on) and queue upward for the hub's review, in one transaction."""
        spec = entry.gate.model_dump_json()
        prov = entry.provenance.model_dump_json()
        with self._lock:
            self._con.execute("BEGIN IMMEDIATE")
            try:
                self._con.execute("INSERT OR REPLACE INTO learned_gates VALUES (?, ?, ?, ?, ?)",
                                  (entry.gate.name, spec, prov, finding.get("id"), now))
                self._con.execute("INSERT INTO proposed_gates (name, spec, provenance, finding, created_at) "
                                  "VALUES (?, ?, ?, ?, ?)", (entry.gate.name, spec, prov,
                                                             json.dumps(finding, default=str), now))
                self._con.execute("COMMIT")
            except BaseException:
                self._con.execute("ROLLBACK")
                raise

    def learned_gates(self) -> list[RegisteredGate]:
        rows = self._exec("SELECT spec, provenance FROM learned_gates ORDER BY created_at").fetchall()
        return [RegisteredGate(gate=GATE_ADAPTER.validate_json(s), provenance=Provenance.model_validate_json(p))
                for s, p in rows]

    def outbox(self, unshipped_only: bool = True) -> list[dict[str, Any]]:
        sql = "SELECT * FROM proposed_gates" + (" WHERE shipped_at IS NULL" if unshipped_only else "")
        return [{**dict(r), "spec": json.loads(r["spec"]), "provenance": json.loads(r["provenance"]),
                 "finding": json.loads(r["finding"])} for r in self._exec(sql + " ORDER BY id").fetchall()]

    def mark_shipped(self, ids: list[int], now: float) -> None:
        for i in ids:
            self._exec("UPDATE proposed_gates SET shipped_at = ? WHERE id = ?", (now, i))
