"""The decision log: append-only, hash-chained, and signed with the Cube's ed25519 key.

Each record is {seq, ts, kind, payload, prev_hash, hash, signature}:
- `hash` = sha256 of the canonical JSON of {seq, ts, kind, payload, prev_hash};
- `prev_hash` is the previous record's hash (64 zeros for seq 1);
- `signature` is `signing.sign_document` over the record with its hash.
An altered record breaks its hash; a removed, inserted or reordered one breaks
the seq count and the chain; a forged one has no valid signature.

Truncating the tail leaves a valid shorter chain, so every append also writes a
signed *head* {seq, hash, ts} beside the log, in the same transaction. `verify`
checks the log reaches the head. A local head catches truncation by anyone who
did not keep an older signed head; anchoring heads off the Cube (the uplink) is
what closes that gap.

Storage: the daemon owns the DuckDB file, so the log lives there, in tables
`audit` and `audit_head`, through a connection the daemon gives us. A JSONL file
(+ `<file>.head`) is the same log for exports, tools and tests.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from samantha.core.clock import Clock
from samantha.core.signing import (
    KeyPair,
    PublicKey,
    SignatureError,
    canonical_json,
    sha256_hex,
    sign_document,
    verify_document,
)
from samantha.core.transaction import transaction

GENESIS = "0" * 64
FIELDS = ("seq", "ts", "kind", "payload", "prev_hash", "hash", "signature")


def record_hash(rec: dict[str, Any]) -> str:
    body = {k: rec[k] for k in ("seq", "ts", "kind", "payload", "prev_hash")}
    return sha256_hex(canonical_json(body))


class AuditStore(Protocol):
    def append(self, record: dict[str, Any], head: dict[str, Any]) -> None:
        """Persist the record and the new head together (or the head strictly after the record)."""

    def read(self) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """All records in stored order, and the signed head if any."""

    def last(self) -> dict[str, Any] | None:
        """The record with the highest seq, where the chain continues."""


class DuckDBAuditStore:
    """Tables `audit` and `audit_head` in the daemon's DuckDB file.

    Give it its own connection or `conn.cursor()`: it runs its own transactions.
    """

    def __init__(self, conn: Any, create: bool = True) -> None:
        self.conn = conn
        if not create:  # read-only inspection: a file without the tables is an empty log
            return
        conn.execute("""CREATE TABLE IF NOT EXISTS audit (
            seq BIGINT PRIMARY KEY, ts DOUBLE NOT NULL, kind VARCHAR NOT NULL, payload VARCHAR NOT NULL,
            prev_hash VARCHAR NOT NULL, hash VARCHAR NOT NULL, signature VARCHAR NOT NULL)""")
        conn.execute("CREATE TABLE IF NOT EXISTS audit_head (id INTEGER PRIMARY KEY, head VARCHAR NOT NULL)")

    def append(self, record: dict[str, Any], head: dict[str, Any]) -> None:
        r = record
        with transaction(self.conn) as con:
            con.execute("INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [r["seq"], r["ts"], r["kind"], json.dumps(r["payload"]), r["prev_hash"], r["hash"],
                         json.dumps(r["signature"])])
            con.execute("INSERT OR REPLACE INTO audit_head VALUES (1, ?)", [json.dumps(head)])

    def _exists(self) -> bool:
        q = "SELECT count(*) FROM information_schema.tables WHERE table_name IN ('audit', 'audit_head')"
        return self.conn.execute(q).fetchone()[0] == 2

    def read(self) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        if not self._exists():
            return [], None
        # The head first: an append commits record and head together, so every record the head
        # names is already visible to the second query, even while the daemon keeps appending.
        head = self.conn.execute("SELECT head FROM audit_head WHERE id = 1").fetchone()
        rows = self.conn.execute(f"SELECT {', '.join(FIELDS)} FROM audit ORDER BY seq").fetchall()
        records = [_decoded(dict(zip(FIELDS, row, strict=True))) for row in rows]
        return records, (_json_or_text(head[0]) if head else None)

    def last(self) -> dict[str, Any] | None:
        row = self.conn.execute(f"SELECT {', '.join(FIELDS)} FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        return _decoded(dict(zip(FIELDS, row, strict=True))) if row else None


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text  # left as is: verify names it as malformed


def _decoded(rec: dict[str, Any]) -> dict[str, Any]:
    return {**rec, "payload": _json_or_text(rec["payload"]), "signature": _json_or_text(rec["signature"])}


class JsonlAuditStore:
    """One record per line, in append order; the signed head in `<path>.head`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.head_path = Path(f"{self.path}.head")

    def append(self, record: dict[str, Any], head: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())
        tmp = self.head_path.with_suffix(".head.tmp")
        tmp.write_text(json.dumps(head, sort_keys=True) + "\n")
        os.replace(tmp, self.head_path)

    def read(self) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        # The head first, for the same reason as in DuckDBAuditStore.read: append writes it last.
        head = _json_or_text(self.head_path.read_text()) if self.head_path.exists() else None
        records: list[dict[str, Any]] = []
        if self.path.exists():
            for n, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), 1):
                if line.strip():
                    parsed = _json_or_text(line)
                    records.append(parsed if isinstance(parsed, dict) else {"_line": n, "_text": line})
        return records, head

    def last(self) -> dict[str, Any] | None:
        records, _ = self.read()
        return records[-1] if records else None


class AuditLog:
    """Appends signed, chained records. Thread-safe; one writer per store (the daemon)."""

    def __init__(self, store: AuditStore, key: KeyPair, clock: Clock) -> None:
        self.store, self.key, self.clock = store, key, clock
        self._lock = threading.Lock()
        last = store.last()
        self._seq = int(last["seq"]) if last else 0
        self._prev = str(last["hash"]) if last else GENESIS

    def append(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        if not kind or not kind.replace("_", "").isalnum():
            raise ValueError(f"audit kind must be a word like 'decision', got {kind!r}")
        # Round-trip through canonical JSON so the stored payload hashes exactly as written.
        payload = json.loads(canonical_json(payload))
        with self._lock:
            rec: dict[str, Any] = {"seq": self._seq + 1, "ts": self.clock.time(), "kind": kind,
                                   "payload": payload, "prev_hash": self._prev}
            rec["hash"] = record_hash(rec)
            rec = sign_document(rec, self.key)
            head = sign_document({"seq": rec["seq"], "hash": rec["hash"], "ts": rec["ts"]}, self.key)
            self.store.append(rec, head)
            self._seq, self._prev = rec["seq"], rec["hash"]
            return rec


@dataclass(frozen=True)
class AuditReport:
    ok: bool
    count: int
    first_bad_seq: int | None = None
    reason: str | None = None
    head_seq: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "count": self.count, "first_bad_seq": self.first_bad_seq, "reason": self.reason,
                "head_seq": self.head_seq}


def _shape_problem(rec: Any) -> str | None:
    if not isinstance(rec, dict):
        return "not a JSON object"
    if "_text" in rec:
        return f"line {rec['_line']} is not a JSON object"
    missing = [f for f in FIELDS if f not in rec]
    if missing:
        return f"missing field(s) {', '.join(missing)}"
    extra = sorted(set(rec) - set(FIELDS))
    if extra:
        return f"unexpected field(s) {', '.join(extra)}"
    if not isinstance(rec["seq"], int) or isinstance(rec["seq"], bool):
        return "seq is not an integer"
    return None


def verify(records: Sequence[Any], trusted: dict[str, PublicKey], head: Any = None,
           require_head: bool = False) -> AuditReport:
    """Check every record in order: shape, seq, chain link, hash, signature; then the signed head.

    `first_bad_seq` is the position (seq) where the log stops being trustworthy.
    """
    prev = GENESIS
    for i, rec in enumerate(records):
        seq = i + 1

        def bad(why: str, at: int = seq) -> AuditReport:
            return AuditReport(False, len(records), at, f"record {at}: {why}")

        if (problem := _shape_problem(rec)) is not None:
            return bad(f"malformed: {problem}")
        if rec["seq"] != seq:
            return bad(f"found seq {rec['seq']} where {seq} belongs: a record was removed, inserted or reordered")
        if rec["prev_hash"] != prev:
            return bad("prev_hash does not link to the previous record: the chain is broken here")
        try:
            actual = record_hash(rec)
        except (TypeError, ValueError) as e:
            return bad(f"cannot be hashed: {e}")
        if rec["hash"] != actual:
            return bad("hash does not match the content: the record was altered")
        try:
            verify_document(rec, trusted)
        except SignatureError as e:
            return bad(f"bad signature: {e}")
        prev = rec["hash"]

    n = len(records)
    if head is None:
        if require_head and n:
            return AuditReport(False, n, n, "no signed head: a truncated tail could not be detected")
        return AuditReport(True, n)
    if not isinstance(head, dict) or not isinstance(head.get("seq"), int):
        return AuditReport(False, n, n + 1, "the head is malformed")
    try:
        verify_document(head, trusted)
    except SignatureError as e:
        return AuditReport(False, n, head["seq"], f"the head has a bad signature: {e}", head["seq"])
    if head["seq"] > n:
        return AuditReport(False, n, n + 1, f"the log ends at seq {n} but the signed head names seq "
                           f"{head['seq']}: records {n + 1}..{head['seq']} were removed", head["seq"])
    if head["seq"] > 0 and records[head["seq"] - 1]["hash"] != head.get("hash"):
        return AuditReport(False, n, head["seq"], "the record at the head's seq does not match the head's hash",
                           head["seq"])
    return AuditReport(True, n, head_seq=head["seq"])


def trusted_keys(*keys: PublicKey) -> dict[str, PublicKey]:
    return {k.key_id: k for k in keys}


def verify_store(store: AuditStore, trusted: dict[str, PublicKey]) -> AuditReport:
    """Verify a whole stored log; the head is required, since every append writes one."""
    records, head = store.read()
    return verify(records, trusted, head, require_head=True)
