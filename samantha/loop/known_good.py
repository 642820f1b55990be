"""The known-good set: bundles that have served healthily on this Cube, the one set every requester reads.

The safety kernel's `safe-mode-flip-to-known-good` rule reads it (through `kernel_snapshot`): in safe mode
a flip may only go back to a bundle in this set. Two things vouch for a bundle:

- the SRE loop: the active bundle is healthy and no incident is open on it at the end of a cycle
  (`SreNodes.record`);
- the rollout controller: a promotion (the new active bundle, and the one it left in standby).

Backed by the `known_good` table in the daemon's DuckDB file (samantha/loop/tables.py), append-only, so
the set survives a SIGKILL and a restart: an auto-committed insert is in DuckDB's WAL before `add`
returns. Without a store (unit tests of logic) it is an in-memory set with the same behaviour.
Nothing removes a bundle: being quarantined is a separate fact the kernel checks on its own.
"""

from __future__ import annotations

import threading
from typing import Any

from samantha.core.clock import REAL_CLOCK, Clock
from samantha.loop.tables import KNOWN_GOOD_DDL, SqlStore


class KnownGood:
    def __init__(self, store: SqlStore | None = None, clock: Clock = REAL_CLOCK) -> None:
        self.store, self.clock = store, clock
        self._lock = threading.Lock()
        self._ids: set[str] = set()
        if store is not None:
            store.write_sql(KNOWN_GOOD_DDL)
            t = store.read_arrow("SELECT DISTINCT bundle_id FROM known_good")
            self._ids = set(t.column(0).to_pylist())

    def add(self, bundle_id: str | None, *, source: str, reason: str = "") -> bool:
        """Vouch for a bundle (durably, before returning). True when it was not known-good before."""
        if not bundle_id:
            return False
        with self._lock:
            if bundle_id in self._ids:
                return False
            if self.store is not None:
                self.store.write_sql("INSERT INTO known_good (bundle_id, added_ts, source, reason) VALUES (?, ?, ?, ?)",
                                     [bundle_id, self.clock.time(), source[:100], reason[:1000]])
            self._ids.add(bundle_id)
            return True

    def __contains__(self, bundle_id: object) -> bool:
        with self._lock:
            return bundle_id in self._ids

    def snapshot(self) -> frozenset[str]:
        """The set now, for the kernel's view."""
        with self._lock:
            return frozenset(self._ids)

    def rows(self) -> list[dict[str, Any]]:
        """Every bundle with who vouched for it first and when (empty without a store)."""
        if self.store is None:
            return []
        return self.store.read_arrow("SELECT bundle_id, min(added_ts) AS added_ts, arg_min(source, added_ts) AS "
                                     "source, arg_min(reason, added_ts) AS reason FROM known_good GROUP BY bundle_id "
                                     "ORDER BY added_ts").to_pylist()
