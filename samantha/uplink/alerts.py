"""Local alerts, and their forwarding to Alertmanager-compatible webhook receivers.

An alert is identified by its dedup key. Firing a key that is already firing
updates that record (count, last seen, annotations) instead of adding one, and
notifies nobody. A new alert and a resolve notify the receivers. Severity is a
label, so a fire with a new severity resolves the old alert and fires a new one,
which is how Alertmanager would see it.

Notifications go through a durable outbox in the daemon's DuckDB file (tables
`alerts` and `alert_outbox`), one row per receiver, so nothing is lost while a
receiver is unreachable or the daemon restarts. `deliver()` sends each
receiver's rows oldest first and stops at that receiver's first failure (order
is kept), retrying later with capped exponential backoff and never dropping.
Delivery is at-least-once: a reply lost to a timeout means a resend, which
Alertmanager deduplicates by the alert's labels.
"""

from __future__ import annotations

import json
import threading
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict

from samantha.core.clock import Clock
from samantha.core.config import AlertsConfig
from samantha.core.domain import Severity
from samantha.core.signing import canonical_json, sha256_hex
from samantha.core.transaction import transaction

AlertStatus = Literal["firing", "resolved"]
ZERO_TIME = "0001-01-01T00:00:00Z"  # Alertmanager's "not set" for endsAt


class Alert(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: int
    key: str
    name: str
    severity: Severity
    status: AlertStatus
    summary: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: float
    ends_at: float | None
    updated_at: float
    fire_count: int

    @property
    def fingerprint(self) -> str:
        return sha256_hex(self.key.encode())[:16]


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def dedup_key(name: str, labels: dict[str, str]) -> str:
    return name + canonical_json(labels).decode()


_COLS = ("id", "key", "name", "severity", "status", "summary", "labels", "annotations", "starts_at", "ends_at",
         "updated_at", "fire_count")


class AlertManager:
    """Alert records and their outbox, in DuckDB tables through a connection the daemon owns.

    Give it its own connection or `conn.cursor()`: it runs its own transactions. Thread-safe.
    """

    def __init__(self, conn: Any, config: AlertsConfig, clock: Clock, http: httpx.Client | None = None) -> None:
        self.conn, self.config, self.clock = conn, config, clock
        self._http = http or httpx.Client(timeout=config.timeout_s)
        self._lock = threading.RLock()  # reads too: one DuckDB connection refuses concurrent calls
        conn.execute("""CREATE TABLE IF NOT EXISTS alerts (
            id BIGINT PRIMARY KEY, key VARCHAR NOT NULL, name VARCHAR NOT NULL, severity VARCHAR NOT NULL,
            status VARCHAR NOT NULL, summary VARCHAR NOT NULL, labels VARCHAR NOT NULL,
            annotations VARCHAR NOT NULL, starts_at DOUBLE NOT NULL, ends_at DOUBLE, updated_at DOUBLE NOT NULL,
            fire_count INTEGER NOT NULL)""")
        conn.execute("""CREATE TABLE IF NOT EXISTS alert_outbox (
            seq BIGINT PRIMARY KEY, receiver VARCHAR NOT NULL, payload VARCHAR NOT NULL, created_at DOUBLE NOT NULL,
            attempts INTEGER NOT NULL, next_attempt_at DOUBLE NOT NULL, last_error VARCHAR)""")

    # --- lifecycle -------------------------------------------------------------------------

    def fire(self, name: str, severity: Severity, summary: str, labels: dict[str, str] | None = None,
             annotations: dict[str, str] | None = None, key: str | None = None) -> Alert:
        """Raise an alert, or update the one already firing under the same dedup key."""
        if not name:
            raise ValueError("an alert needs a name")
        labels = {str(k): str(v) for k, v in (labels or {}).items()}
        annotations = {"summary": summary, **{str(k): str(v) for k, v in (annotations or {}).items()}}
        key = key or dedup_key(name, labels)
        now = self.clock.time()
        with self._lock, self._tx():
            current = self._firing(key)
            if current is not None and current.severity == severity:
                self.conn.execute("UPDATE alerts SET summary = ?, annotations = ?, updated_at = ?, "
                                  "fire_count = fire_count + 1 WHERE id = ?",
                                  [summary, json.dumps(annotations), now, current.id])
                return self._get(current.id)
            if current is not None:
                self._resolve(current, now)
            new_id = self.conn.execute("SELECT coalesce(max(id), 0) + 1 FROM alerts").fetchone()[0]
            self.conn.execute("INSERT INTO alerts VALUES (?, ?, ?, ?, 'firing', ?, ?, ?, ?, NULL, ?, 1)",
                              [new_id, key, name, severity, summary, json.dumps(labels), json.dumps(annotations),
                               now, now])
            alert = self._get(new_id)
            self._enqueue(alert)
            return alert

    def resolve(self, key: str) -> Alert | None:
        """Resolve the alert firing under `key`; None when nothing fires under it."""
        now = self.clock.time()
        with self._lock, self._tx():
            current = self._firing(key)
            return None if current is None else self._resolve(current, now)

    def active(self) -> list[Alert]:
        with self._lock:
            return self._select("WHERE status = 'firing' ORDER BY id")

    def history(self, limit: int = 100) -> list[Alert]:
        with self._lock:
            return self._select(f"ORDER BY id DESC LIMIT {int(limit)}")

    # --- forwarding ------------------------------------------------------------------------

    def payload(self, alert: Alert) -> dict[str, Any]:
        """One Alertmanager webhook (version 4) notification, one group per dedup key."""
        labels = {"alertname": alert.name, "severity": alert.severity, "cube": self.config.sender, **alert.labels}
        return {
            "version": "4",
            "groupKey": f"{{}}:{{fingerprint=\"{alert.fingerprint}\"}}",
            "truncatedAlerts": 0,
            "status": alert.status,
            "receiver": self.config.sender,
            "groupLabels": {"alertname": alert.name},
            "commonLabels": labels,
            "commonAnnotations": alert.annotations,
            "externalURL": "",
            "alerts": [{
                "status": alert.status,
                "labels": labels,
                "annotations": alert.annotations,
                "startsAt": rfc3339(alert.starts_at),
                "endsAt": rfc3339(alert.ends_at) if alert.ends_at is not None else ZERO_TIME,
                "generatorURL": "",
                "fingerprint": alert.fingerprint,
            }],
        }

    def pending(self) -> list[dict[str, Any]]:
        """Undelivered notifications, oldest first, with their attempts and last error."""
        with self._lock:
            rows = self.conn.execute("SELECT seq, receiver, attempts, next_attempt_at, last_error FROM alert_outbox "
                                     "ORDER BY seq").fetchall()
        return [dict(zip(("seq", "receiver", "attempts", "next_attempt_at", "last_error"), r, strict=True))
                for r in rows]

    def deliver(self) -> dict[str, int]:
        """One bounded delivery pass: returns how many notifications were sent and how many attempts failed."""
        sent = failed = 0
        budget = self.config.max_sends_per_tick
        for receiver in self.config.receivers:
            while budget > 0:
                with self._lock:
                    row = self.conn.execute("SELECT seq, payload, attempts, next_attempt_at FROM alert_outbox "
                                            "WHERE receiver = ? ORDER BY seq LIMIT 1", [receiver]).fetchone()
                if row is None or row[3] > self.clock.time():
                    break
                budget -= 1
                error = self._post(receiver, row[1])
                with self._lock:
                    if error is None:
                        self.conn.execute("DELETE FROM alert_outbox WHERE seq = ?", [row[0]])
                        sent += 1
                        continue
                    delay = min(self.config.backoff_max_s, self.config.backoff_initial_s * 2 ** row[2])
                    self.conn.execute("UPDATE alert_outbox SET attempts = attempts + 1, next_attempt_at = ?, "
                                      "last_error = ? WHERE seq = ?", [self.clock.time() + delay, error, row[0]])
                failed += 1
                break  # keep this receiver's order: nothing overtakes the stuck notification
        return {"sent": sent, "failed": failed}

    def close(self) -> None:
        self._http.close()

    # --- internals -------------------------------------------------------------------------

    def _post(self, receiver: str, body: str) -> str | None:
        try:
            r = self._http.post(receiver, content=body, headers={"Content-Type": "application/json"})
        except httpx.HTTPError as e:
            return f"{type(e).__name__}: {e}"[:500]
        return None if 200 <= r.status_code < 300 else f"HTTP {r.status_code}"

    def _tx(self) -> AbstractContextManager[Any]:
        """The alert record and its notifications commit together, or not at all."""
        return transaction(self.conn)

    def _resolve(self, current: Alert, now: float) -> Alert:
        self.conn.execute("UPDATE alerts SET status = 'resolved', ends_at = ?, updated_at = ? WHERE id = ?",
                          [now, now, current.id])
        alert = self._get(current.id)
        self._enqueue(alert)
        return alert

    def _enqueue(self, alert: Alert) -> None:
        body = json.dumps(self.payload(alert))
        now = self.clock.time()
        for receiver in self.config.receivers:
            seq = self.conn.execute("SELECT coalesce(max(seq), 0) + 1 FROM alert_outbox").fetchone()[0]
            self.conn.execute("INSERT INTO alert_outbox VALUES (?, ?, ?, ?, 0, ?, NULL)",
                              [seq, receiver, body, now, now])

    def _firing(self, key: str) -> Alert | None:
        found = self._select("WHERE key = ? AND status = 'firing'", [key])
        return found[0] if found else None

    def _get(self, alert_id: int) -> Alert:
        return self._select("WHERE id = ?", [alert_id])[0]

    def _select(self, where: str, params: list[Any] | None = None) -> list[Alert]:
        rows = self.conn.execute(f"SELECT {', '.join(_COLS)} FROM alerts {where}", params or []).fetchall()
        out = []
        for row in rows:
            d = dict(zip(_COLS, row, strict=True))
            out.append(Alert(**{**d, "labels": json.loads(d["labels"]), "annotations": json.loads(d["annotations"])}))
        return out
