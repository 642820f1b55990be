"""Advisory triage, off the fast path: a bounded queue and one worker thread.

The graph's triage node only *submits* (never waits), so a slow, absent or wrong triage
cannot delay or change a decision. The worker attaches a probable cause (and, from the LLM,
verified advisory text) to the incident when it has them. The default `rule_triage` is deterministic; the local
LLM's triage plugs in as another `TriageFn` with the same signature.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from samantha.loop.incidents import IncidentBook

log = logging.getLogger(__name__)

CAUSES = ("errors", "latency", "divergence", "input_drift", "host_resources", "staleness", "unknown")
TriageFn = Callable[[dict[str, Any]], tuple[str, dict[str, Any]]]  # incident -> (cause, detail)


def _cause_of(v: dict[str, Any]) -> str:
    kind, gate = v.get("kind", ""), v.get("gate", "")
    values = v.get("values") or {}
    if kind == "drift":
        return "input_drift"
    if kind == "staleness":
        return "staleness"
    if gate.startswith("host-") or str(values.get("metric", "")).startswith("host_"):
        return "host_resources"
    for word in ("error", "latency", "divergence"):
        if word in gate or word in str(values.get("metric", "")) or word in str(values.get("signal", "")):
            return {"error": "errors"}.get(word, word)
    return "unknown"


def rule_triage(incident: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Most common cause among the failing verdicts (the summary is code-written elsewhere:
    samantha/reporting/incident_summary.py)."""
    verdicts = list((incident.get("evidence") or {}).values())
    counts: dict[str, int] = {}
    for v in verdicts:
        c = _cause_of(v)
        counts[c] = counts.get(c, 0) + 1
    cause = max(counts, key=lambda c: (counts[c], -CAUSES.index(c))) if counts else "unknown"
    return cause, {"method": "rules", "causes": counts}


class Triager:
    def __init__(self, incidents: IncidentBook, fn: TriageFn = rule_triage, *, queue_size: int = 32) -> None:
        self.incidents, self.fn = incidents, fn
        self._q: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=queue_size)
        self._thread: threading.Thread | None = None
        self._seen: dict[str, frozenset[str]] = {}  # incident id -> gates already triaged
        self.submitted = self.dropped = self.done = self.errors = 0

    def start(self) -> Triager:
        self._thread = threading.Thread(target=self._run, name="sre-triage", daemon=True)
        self._thread.start()
        return self

    def submit_changed(self, incidents: list[dict[str, Any]]) -> int:
        """Queue the incidents that are new or gained gates since their last triage. Never blocks."""
        n = 0
        for inc in incidents:
            gates = frozenset(inc.get("gates") or ())
            if self._seen.get(inc["id"]) == gates:
                continue
            try:
                self._q.put_nowait(inc)
            except queue.Full:
                self.dropped += 1
                continue
            self._seen[inc["id"]] = gates
            self.submitted += 1
            n += 1
        return n

    def _run(self) -> None:
        while True:
            inc = self._q.get()
            if inc is None:
                return
            try:
                cause, detail = self.fn(inc)
                self.incidents.attach_triage(inc["id"], cause, detail)
                self.done += 1
            except Exception:  # advisory: a failing triage is logged and forgotten, never raised
                self.errors += 1
                log.exception("triage failed for %s", inc.get("id"))

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread is None:
            return
        with contextlib.suppress(queue.Full):
            self._q.put(None, timeout=timeout)
        self._thread.join(timeout)

    def stats(self) -> dict[str, int]:
        return {"submitted": self.submitted, "done": self.done, "dropped": self.dropped, "errors": self.errors,
                "queued": self._q.qsize()}
