"""The hub's disk: Parquet files per batch, a SQLite index (dedup + ack watermarks), policy, decisions.

Layout under the root (hive-style, so DuckDB or any Parquet engine reads the fleet directly):

    reported/<kind>/cube=<cube id>/day=<YYYY-MM-DD>/<batch id>.parquet
    policy/current.json          the module Cubes pull; policy/history/v<N>.json
    hub.sqlite                   batches (cube, batch_id) primary key, watermarks, decisions

A batch is stored once per (cube, batch id): the file is written to a temporary name,
fsynced and renamed, then indexed. A crash between the two leaves a file the retry
overwrites under the same name, so the fleet never sees a record twice.
"""

from __future__ import annotations

import io
import json
import re
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq

from samantha.core.fsutil import atomic_write
from samantha.core.signing import sha256_hex

CUBE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
BATCH_RE = re.compile(r"^([0-9a-f]{12})-(\d{10})$")
KIND_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
QUEUED_KINDS = ("findings", "proposed_gates", "approval_requests")


class HubInputError(ValueError):
    def __init__(self, field: str, reason: str, status: int = 400) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason, self.status = field, reason, status


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


def day_of(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


class HubStorage:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.root / "hub.sqlite", check_same_thread=False, isolation_level=None,
                                   timeout=30.0)  # several writer processes share the index
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript("""
            CREATE TABLE IF NOT EXISTS batches (cube TEXT NOT NULL, batch_id TEXT NOT NULL, epoch TEXT NOT NULL,
                seq INTEGER NOT NULL, kind TEXT NOT NULL, path TEXT NOT NULL, records INTEGER NOT NULL,
                bytes INTEGER NOT NULL, received_at REAL NOT NULL, PRIMARY KEY (cube, batch_id));
            CREATE TABLE IF NOT EXISTS watermarks (cube TEXT NOT NULL, epoch TEXT NOT NULL, seq INTEGER NOT NULL,
                PRIMARY KEY (cube, epoch));
            CREATE TABLE IF NOT EXISTS decisions (seq INTEGER PRIMARY KEY AUTOINCREMENT, cube TEXT NOT NULL,
                doc TEXT NOT NULL, received_at REAL NOT NULL);
        """)
        self.stats = {"stored": 0, "duplicates": 0, "rejected": 0}

    def close(self) -> None:
        self._db.close()

    # ---------------- Reported State ----------------

    def put_batch(self, cube: str, batch_id: str, *, seq: int, kind: str, first_ts: float, sha256: str,
                  body: bytes, now: float) -> dict[str, Any]:
        if not CUBE_RE.match(cube):
            raise HubInputError("cube", "must match " + CUBE_RE.pattern)
        m = BATCH_RE.match(batch_id)
        if not m:
            raise HubInputError("batch_id", "must be <12 hex epoch>-<10 digit seq>")
        epoch = m.group(1)
        if int(m.group(2)) != seq:
            raise HubInputError("X-Samantha-Seq", f"{seq} does not match the batch id")
        if not KIND_RE.match(kind):
            raise HubInputError("X-Samantha-Kind", "must match " + KIND_RE.pattern)
        if sha256_hex(body) != sha256:
            self.stats["rejected"] += 1
            raise HubInputError("body", f"sha256 mismatch ({len(body)} bytes arrived): a cut or corrupted upload")
        with self._lock:
            if self._db.execute("SELECT 1 FROM batches WHERE cube = ? AND batch_id = ?", (cube, batch_id)).fetchone():
                self.stats["duplicates"] += 1
                return {"status": "duplicate", "seq": seq, "watermark": self._advance(cube, epoch)}
        try:
            meta = pq.read_metadata(io.BytesIO(body))
        except Exception as e:  # noqa: BLE001 - any parse failure is the sender's problem
            self.stats["rejected"] += 1
            raise HubInputError("body", f"not a Parquet file: {e}") from None
        rel = Path("reported") / kind / f"cube={cube}" / f"day={day_of(first_ts)}" / f"{batch_id}.parquet"
        with self._lock:
            if self._db.execute("SELECT 1 FROM batches WHERE cube = ? AND batch_id = ?", (cube, batch_id)).fetchone():
                self.stats["duplicates"] += 1
                return {"status": "duplicate", "seq": seq, "watermark": self._advance(cube, epoch)}
            atomic_write(self.root / rel, body)  # another process racing on the same id writes the same bytes
            cur = self._db.execute("INSERT OR IGNORE INTO batches VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                   (cube, batch_id, epoch, seq, kind, str(rel), meta.num_rows, len(body), now))
            if cur.rowcount == 0:
                self.stats["duplicates"] += 1
                return {"status": "duplicate", "seq": seq, "watermark": self._advance(cube, epoch)}
            self.stats["stored"] += 1
            return {"status": "stored", "seq": seq, "records": meta.num_rows,
                    "watermark": self._advance(cube, epoch)}

    def _advance(self, cube: str, epoch: str) -> int:
        row = self._db.execute("SELECT seq FROM watermarks WHERE cube = ? AND epoch = ?", (cube, epoch)).fetchone()
        wm = row[0] if row else 0
        while self._db.execute("SELECT 1 FROM batches WHERE cube = ? AND epoch = ? AND seq = ?",
                               (cube, epoch, wm + 1)).fetchone():
            wm += 1
        self._db.execute("INSERT OR REPLACE INTO watermarks VALUES (?, ?, ?)", (cube, epoch, wm))
        return wm

    def watermark(self, cube: str, epoch: str) -> int:
        with self._lock:
            return self._advance(cube, epoch)

    def batches(self, cube: str | None = None) -> list[dict[str, Any]]:
        cols = ("cube", "batch_id", "epoch", "seq", "kind", "path", "records", "bytes", "received_at")
        q = f"SELECT {', '.join(cols)} FROM batches" + (" WHERE cube = ?" if cube else "") + " ORDER BY cube, seq"
        with self._lock:
            return [dict(zip(cols, r, strict=True)) for r in self._db.execute(q, (cube,) if cube else ())]

    def dataset(self, kind: str) -> str:
        return str(self.root / "reported" / kind / "**" / "*.parquet")

    def kinds(self) -> list[str]:
        d = self.root / "reported"
        # a kind's directory exists before its first file is renamed into place: a query over it then would
        # find no file (HTTP 500 from /v1/fleet/stats while the first batch of a kind was being written)
        return sorted(p.name for p in d.iterdir() if p.is_dir() and next(p.glob("**/*.parquet"), None)) \
            if d.exists() else []

    def query(self, sql: str) -> list[dict[str, Any]]:
        """Run SQL over the fleet; `reported_<kind>` views name each kind's Parquet dataset."""
        con = duckdb.connect()
        try:
            for k in self.kinds():
                con.execute(f"CREATE VIEW reported_{k} AS SELECT * FROM read_parquet('{self.dataset(k)}', "
                            f"hive_partitioning = true, union_by_name = true)")
            rel = con.sql(sql)
            return [dict(zip(rel.columns, r, strict=True)) for r in rel.fetchall()]
        finally:
            con.close()

    def fleet_stats(self) -> dict[str, Any]:
        """Per kind: records, distinct record keys per cube, and the duplicates between them."""
        out: dict[str, Any] = {}
        for k in self.kinds():
            r = self.query(f"SELECT count(*) AS records, count(DISTINCT (cube, record_key)) AS distinct_records, "
                           f"count(DISTINCT cube) AS cubes FROM reported_{k}")[0]
            r["duplicates"] = r["records"] - r["distinct_records"]
            out[k] = r
        return {"kinds": out, "duplicates": sum(v["duplicates"] for v in out.values()), **self.stats}

    def queue(self, kind: str, limit: int = 100) -> list[dict[str, Any]]:
        """Edge findings, proposed gates, approval requests: queued for people, never applied fleet-wide."""
        if kind not in QUEUED_KINDS:
            raise HubInputError("kind", f"must be one of {QUEUED_KINDS}")
        if kind not in self.kinds():
            return []
        rows = self.query(f"SELECT cube, ts, record_key, doc FROM reported_{kind} ORDER BY ts DESC "
                          f"LIMIT {int(limit)}")
        return [{**r, "doc": json.loads(r["doc"]), "status": "queued"} for r in rows]

    # ---------------- policy modules ----------------

    @property
    def policy_path(self) -> Path:
        return self.root / "policy" / "current.json"

    def policy(self) -> dict[str, Any] | None:
        return _read_json(self.policy_path)

    def publish(self, doc: Any) -> dict[str, Any]:
        """Store a signed module as the current one. The hub relays; each Cube verifies."""
        if not isinstance(doc, dict):
            raise HubInputError("body", "a policy module is a JSON object")
        v = doc.get("version")
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise HubInputError("version", "must be an integer >= 1")
        if not isinstance(doc.get("signature"), dict):
            raise HubInputError("signature", "the module must be signed (samantha hub publish signs it)")
        data = json.dumps(doc, sort_keys=True).encode()
        with self._lock:
            atomic_write(self.root / "policy" / "history" / f"v{v}.json", data)
            atomic_write(self.policy_path, data)
        return {"version": v, "sha256": sha256_hex(data)}

    @property
    def tuf_path(self) -> Path:
        return self.root / "policy" / "tuf.json"

    def tuf(self) -> dict[str, Any] | None:
        return _read_json(self.tuf_path)

    def publish_tuf(self, doc: Any) -> dict[str, Any]:
        """Store the fleet TUF repository's metadata set (`{"files": {name: text}}`), served beside the module.
        The hub checks only its shape; each Cube verifies the metadata with its pinned root."""
        from samantha.cube.tuf_meta import parse_metadata_set  # the Cube's reader; not needed by other routes

        try:
            parse_metadata_set(doc)
        except ValueError as e:
            field, _, reason = str(e).partition(": ")
            raise HubInputError(field, reason) from None
        data = json.dumps(doc, sort_keys=True).encode()
        with self._lock:
            atomic_write(self.tuf_path, data)
        return {"sha256": sha256_hex(data), "files": sorted(doc["files"])}

    # ---------------- approval decisions ----------------

    def add_decision(self, cube: str, doc: Any, now: float) -> int:
        if not CUBE_RE.match(cube):
            raise HubInputError("cube", "must match " + CUBE_RE.pattern)
        if not isinstance(doc, dict) or not isinstance(doc.get("signature"), dict):
            raise HubInputError("body", "a decision is a signed JSON object")
        with self._lock:
            cur = self._db.execute("INSERT INTO decisions (cube, doc, received_at) VALUES (?, ?, ?)",
                                   (cube, json.dumps(doc, sort_keys=True), now))
            return int(cur.lastrowid)

    def decisions(self, cube: str, after: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT seq, doc FROM decisions WHERE cube = ? AND seq > ? ORDER BY seq LIMIT ?",
                                    (cube, int(after), int(limit))).fetchall()
        return [{"seq": s, "doc": json.loads(d)} for s, d in rows]

