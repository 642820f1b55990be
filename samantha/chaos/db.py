"""The chaos state file: one SQLite database (WAL) shared by the daemon and its runner subprocesses.

SQLite, not the DuckDB store, because the Chaos Toolkit runner is a separate process
that must record each injection before making it, and DuckDB admits one writer
process (the daemon). Every table a chaos module owns is created by that module.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path


def connect(path: str | Path) -> sqlite3.Connection:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(p, timeout=30.0, isolation_level=None, check_same_thread=False)
    con.row_factory = sqlite3.Row
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")  # an intent must survive power loss before the fault goes in
    con.execute("PRAGMA busy_timeout=30000")
    return con


class ChaosTables:
    """One module's tables in the chaos file: created at open; statements serialized on one connection
    (threads share it; the lock also guards a caller's explicit transaction)."""

    def __init__(self, path: str | Path, schema: str) -> None:
        self.path = Path(path)
        self._con = connect(self.path)
        self._con.executescript(schema)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._con.close()

    def _exec(self, sql: str, params: tuple = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._con.execute(sql, params)
