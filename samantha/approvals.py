"""The approval queue: escalated chaos proposals wait here for a signed operator decision.

An item carries the proposal, every pre-flight reason, the health snapshot at the time,
the predicted blast radius, the revert plan and the LLM rationale (if any). The chaos
thread waits in LangGraph (`interrupt()`, SQLite checkpointer) and resumes on a decision.

A decision is a JSON document signed (ed25519, samantha.signing) by an operator key
listed in the Cube's trusted-operators file with a role and an expiry. It is checked
for: signature, role, key expiry, decision expiry and age, replay (nonce), and that it
names this item and this exact proposal. Approval is not a bypass: pre-flight runs
again before execution and only the escalations the operator saw are waived.
Undecided items expire. State lives in the chaos SQLite file (tables approvals, nonces).
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
import uuid
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from samantha.chaos.db import connect
from samantha.chaos.graph import ChaosGraph, ChaosState
from samantha.chaos.preflight import PreflightResult
from samantha.chaos.proposal import Proposal
from samantha.gates.registry import GATE_ADAPTER
from samantha.signing import KeyPair, PublicKey, SignatureError, sign_document, verify_document
from samantha.validated_yaml import DocumentError, load_model_file

Role = Literal["approver", "admin", "viewer"]
DECIDING_ROLES = ("approver", "admin")
SCHEMA = """
CREATE TABLE IF NOT EXISTS approvals (
    id TEXT PRIMARY KEY, status TEXT NOT NULL, created_at REAL NOT NULL, expires_at REAL NOT NULL,
    proposal TEXT NOT NULL, preflight TEXT NOT NULL, health TEXT NOT NULL, blast TEXT, revert_plan TEXT,
    llm_rationale TEXT, decision TEXT, decided_at REAL, result TEXT
);
CREATE TABLE IF NOT EXISTS nonces (nonce TEXT PRIMARY KEY, key_id TEXT NOT NULL, used_at REAL NOT NULL);
"""


class Operator(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(min_length=1, max_length=100)
    role: Role
    public_key: str = Field(description="base64 ed25519 public key (the .pub file's content)")
    expires_at: float = Field(description="epoch seconds; the key is refused after this")


class TrustedOperators(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    operators: list[Operator] = Field(default_factory=list)


class DecisionRefused(Exception):
    def __init__(self, status: int, code: str, reason: str, field: str | None = None) -> None:
        self.status, self.code, self.reason, self.field = status, code, reason, field
        super().__init__(f"{code}: {reason}")


def load_operators(path: str | Path) -> TrustedOperators:
    p = Path(path)
    if not p.exists():
        return TrustedOperators()
    return load_model_file(TrustedOperators, p, empty_ok=True)


def add_operator(path: str | Path, name: str, role: str, public: PublicKey, expires_at: float) -> None:
    import yaml

    p = Path(path)
    cur = load_operators(p).model_dump(mode="json") if p.exists() else {"operators": []}
    cur["operators"].append({"name": name, "role": role, "public_key": public.to_b64(), "expires_at": expires_at})
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(yaml.safe_dump(cur, sort_keys=False))


def make_decision(approval_id: str, verb: str, proposal_key: str, key: KeyPair, *, operator: str, now: float,
                  ttl_s: float = 300.0, reason: str = "") -> dict[str, Any]:
    """A signed decision document, as `samantha approvals approve|deny` sends it."""
    doc = {"approval_id": approval_id, "decision": verb, "proposal_key": proposal_key, "operator": operator,
           "issued_at": now, "expires_at": now + ttl_s, "nonce": secrets.token_hex(16), "reason": reason}
    return sign_document(doc, key)


class ApprovalQueue:
    def __init__(self, service: Any) -> None:
        self.service = service
        self.config, self.cc, self.clock = service.config, service.cc, service.clock
        self._con = connect(self.config.resolve(self.cc.db))
        self._con.executescript(SCHEMA)
        self._lock = threading.Lock()
        self.graph = ChaosGraph(_Nodes(service, self), self.config.resolve(self.cc.checkpoint_path))

    def close(self) -> None:
        self.graph.close()
        self._con.close()

    def _exec(self, sql: str, params: tuple = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._con.execute(sql, params)

    # --- the chaos thread -------------------------------------------------------------------
    def submit(self, p: Proposal, *, guards: list[Any] = (), extra_hypothesis: list[str] = (),
               shadow: bool | None = None) -> dict[str, Any]:
        tid = "apr-" + uuid.uuid4().hex[:16]
        state: ChaosState = {"thread_id": tid, "proposal": p.model_dump(mode="json"),
                             "guards": [g.model_dump(mode="json") for g in guards],
                             "extra_hypothesis": list(extra_hypothesis), "shadow": shadow}
        out = self.graph.start(state)
        if self.graph.waiting(tid):
            return {"outcome": "escalated", "preflight": out.get("preflight"), "approval": self.get(tid)}
        return out.get("result") or {"outcome": out.get("verdict")}

    def record(self, s: ChaosState) -> None:
        """Create the queue item for a waiting thread (idempotent: the node re-runs on resume)."""
        pre = s["preflight"]
        health = s.get("health", {})
        p = s["proposal"]
        now = self.clock.time()
        self._exec("INSERT OR IGNORE INTO approvals (id, status, created_at, expires_at, proposal, preflight, health, "
                   "blast, revert_plan, llm_rationale) VALUES (?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?)",
                   (s["thread_id"], now, now + self.cc.approval_ttl_s, json.dumps({**p, "key": Proposal(**p).key}),
                    json.dumps(pre), json.dumps(health, default=str), json.dumps(pre.get("blast")),
                    (pre.get("blast") or {}).get("revert"), p.get("rationale") if p.get("source") == "llm" else None))

    # --- reading ----------------------------------------------------------------------------
    def list(self, status: str | None = None) -> list[dict[str, Any]]:
        self.expire_due()
        sql, args = "SELECT * FROM approvals", ()
        if status:
            sql, args = sql + " WHERE status = ?", (status,)
        return [_row(r) for r in self._exec(sql + " ORDER BY created_at DESC", args).fetchall()]

    def get(self, aid: str) -> dict[str, Any] | None:
        r = self._exec("SELECT * FROM approvals WHERE id = ?", (aid,)).fetchone()
        return _row(r) if r else None

    def set_status(self, aid: str, status: str, result: dict[str, Any] | None = None) -> None:
        self._exec("UPDATE approvals SET status = ?, result = coalesce(?, result) WHERE id = ?",
                   (status, json.dumps(result, default=str) if result is not None else None, aid))

    # --- deciding ---------------------------------------------------------------------------
    def verify(self, aid: str, doc: dict[str, Any], expect: str) -> dict[str, Any]:
        """Every check a decision must pass. Returns the operator; raises DecisionRefused naming what failed."""
        item = self.get(aid)
        if item is None:
            raise DecisionRefused(404, "unknown_approval", f"no approval {aid}", "approval_id")
        try:
            ops = load_operators(self.config.resolve(self.cc.trusted_operators))
        except DocumentError as e:
            raise DecisionRefused(500, "bad_operators_file", str(e)) from None
        trusted: dict[str, PublicKey] = {}
        by_id: dict[str, Operator] = {}
        for o in ops.operators:
            try:
                pk = PublicKey.from_b64(o.public_key)
            except SignatureError:
                continue
            trusted[pk.key_id], by_id[pk.key_id] = pk, o
        try:
            key_id = verify_document(doc, trusted)
        except SignatureError as e:
            raise DecisionRefused(403, "bad_signature", str(e), "signature") from None
        op, now = by_id[key_id], self.clock.time()
        if op.expires_at <= now:
            raise DecisionRefused(403, "operator_key_expired", f"operator key of {op.name} expired", "signature")
        if op.role not in DECIDING_ROLES:
            raise DecisionRefused(403, "role", f"{op.name} has role {op.role}: only {', '.join(DECIDING_ROLES)} "
                                  "may decide", "signature")
        if doc.get("decision") != expect:
            raise DecisionRefused(422, "wrong_decision", f"the signed decision is {doc.get('decision')!r}, "
                                  f"this endpoint takes {expect!r}", "decision")
        if doc.get("approval_id") != aid:
            raise DecisionRefused(422, "wrong_item", "the decision was signed for another approval", "approval_id")
        if doc.get("proposal_key") != item["proposal"].get("key"):
            raise DecisionRefused(422, "wrong_proposal", "the decision was signed for another proposal",
                                  "proposal_key")
        issued, expires = doc.get("issued_at"), doc.get("expires_at")
        if not isinstance(issued, int | float) or not isinstance(expires, int | float):
            raise DecisionRefused(422, "invalid", "issued_at and expires_at must be epoch seconds", "expires_at")
        if expires <= now:
            raise DecisionRefused(403, "decision_expired", "the signed decision has expired", "expires_at")
        if issued > now + 60 or now - issued > self.cc.decision_max_age_s:
            raise DecisionRefused(403, "decision_stale", f"issued_at is more than {self.cc.decision_max_age_s:g} s "
                                  "old or in the future", "issued_at")
        nonce = doc.get("nonce")
        if not isinstance(nonce, str) or len(nonce) < 16:
            raise DecisionRefused(422, "invalid", "nonce must be a string of >= 16 characters", "nonce")
        try:
            self._exec("INSERT INTO nonces VALUES (?, ?, ?)", (nonce, key_id, now))
        except sqlite3.IntegrityError:
            raise DecisionRefused(409, "replay", "this decision (nonce) was already used", "nonce") from None
        self.expire_due()
        item = self.get(aid)
        if item is None or item["status"] != "pending":
            raise DecisionRefused(409, "not_pending", f"approval {aid} is {item['status'] if item else 'gone'}",
                                  "approval_id")
        return {"operator": op.name, "role": op.role, "key_id": key_id}

    def decide(self, aid: str, doc: dict[str, Any], *, expect: str) -> dict[str, Any]:
        who = self.verify(aid, doc, expect)
        status = "approved" if expect == "approve" else "denied"
        self._exec("UPDATE approvals SET status = ?, decision = ?, decided_at = ? WHERE id = ?",
                   (status, json.dumps({**doc, "verified": who}), self.clock.time(), aid))
        out = self.graph.resume(aid, {"decision": expect, **who})
        return {"approval": self.get(aid), "result": out.get("result")}

    def expire_due(self) -> list[str]:
        now = self.clock.time()
        due = [r[0] for r in self._exec("SELECT id FROM approvals WHERE status = 'pending' AND expires_at <= ?",
                                        (now,)).fetchall()]
        for aid in due:
            self.set_status(aid, "expired")
            if self.graph.waiting(aid):
                self.graph.resume(aid, {"decision": "expired"})
        return due


def _row(r: sqlite3.Row) -> dict[str, Any]:
    d = dict(r)
    for k in ("proposal", "preflight", "health", "blast", "decision", "result"):
        if d.get(k):
            d[k] = json.loads(d[k])
    return d


class _Nodes:
    """Graph nodes: thin adapters onto ChaosService and the queue."""

    def __init__(self, service: Any, queue: ApprovalQueue) -> None:
        self.s, self.q = service, queue

    @staticmethod
    def _guards(st: ChaosState) -> list[Any]:
        return [GATE_ADAPTER.validate_python(g) for g in st.get("guards") or []]

    def preflight(self, st: ChaosState) -> ChaosState:
        res, inp = self.s.preflight(Proposal(**st["proposal"]), guards=self._guards(st))
        health = {"cube": inp.cube.model_dump(mode="json"), "host": inp.host.model_dump(mode="json"),
                  "gates": [g.model_dump() for g in inp.gates], "error_budget_remaining": inp.error_budget_remaining}
        return {"preflight": res.model_dump(mode="json"), "verdict": res.verdict, "health": health}

    def queue(self, st: ChaosState) -> ChaosState:
        self.q.record(st)
        return {}

    def execute(self, st: ChaosState) -> ChaosState:
        res = PreflightResult.model_validate(st["preflight"])
        out = self.s.execute(Proposal(**st["proposal"]), res, guards=self._guards(st),
                             extra_hypothesis=st.get("extra_hypothesis") or [], shadow=st.get("shadow"))
        return {"result": out}

    def execute_approved(self, st: ChaosState) -> ChaosState:
        codes = {r["code"] for r in st["preflight"]["reasons"] if r["severity"] == "escalate"}
        out = self.s.execute_approved(Proposal(**st["proposal"]), codes, st["thread_id"], guards=self._guards(st),
                                      extra_hypothesis=st.get("extra_hypothesis") or [], shadow=st.get("shadow"))
        self.q.set_status(st["thread_id"], "executed" if out.get("outcome") != "refused_at_execution" else "refused",
                          out)
        return {"result": out}

    def refuse(self, st: ChaosState) -> ChaosState:
        d = (st.get("decision") or {}).get("decision")
        if d is None:
            return {"result": {"outcome": "rejected", "preflight": st["preflight"]}}
        return {"result": {"outcome": "denied" if d == "deny" else "expired", "decision": st["decision"]}}


def attach_approvals(service: Any) -> ApprovalQueue:
    service.approvals = ApprovalQueue(service)
    return service.approvals
