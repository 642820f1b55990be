"""The approval queue: escalated chaos proposals wait here for a signed operator decision.

An item carries the proposal, every pre-flight reason, the health snapshot at the time,
the predicted blast radius, the revert plan and the LLM rationale (if any). The chaos
thread waits in LangGraph (`interrupt()`, SQLite checkpointer) and resumes on a decision.

A decision is a JSON document signed (ed25519, samantha.core.signing) by an operator key
listed in the Cube's operators file (`samantha/core/operators.py`, the one auth uses) with a role
and an optional expiry. It is checked
for: signature, role, key expiry, decision expiry and age, replay (nonce), and that it
names this item and this exact proposal. Approval is not a bypass: pre-flight runs
again before execution and only the escalations the operator saw are waived.
Undecided items expire. State lives in the chaos SQLite file (tables approvals, nonces).

A decision relayed by the hub (`samantha/approval-decision`, `uplink.operator_docs`) is trusted
through the policy module's `approve` keys instead of the operators file: the uplink verifies
it once (`check_operator_doc`), then `RelayedDecisions` runs the same item checks (`_check_item`)
and the same `_apply` as a local decision.

A native Chaos Toolkit document that escalates (an activity Samantha cannot classify, a kernel escalation of
one of its injections) waits as an item too (`ask_native`): no chaos thread, the document itself kept in
table native_documents. Its proposal is `native_experiment` over the document's sha256, so a signed decision
names that exact document; an approval runs it through `ChaosService.execute_native_approved`, which judges
it again first (only the escalations the operator saw are waived).

Other parts escalate through `ask` too (a rollout held in a grey zone): such an item has no chaos thread;
a decision only sets its status, which the asker reads (`decision`).
"""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
import threading
import uuid
from collections.abc import Callable
from typing import Any

from samantha.chaos.db import ChaosTables
from samantha.chaos.graph import ChaosGraph, ChaosState
from samantha.core.operators import OperatorSpec, load_operators
from samantha.core.proposal import Proposal
from samantha.core.signing import (
    KeyPair,
    PublicKey,
    SignatureError,
    canonical_json,
    sha256_hex,
    sign_document,
    verify_document,
)
from samantha.core.validated_yaml import DocumentError
from samantha.gates.registry import GATE_ADAPTER
from samantha.kernel.preflight import PreflightResult

log = logging.getLogger(__name__)
DECIDING_ROLES = ("approver", "admin")
SCHEMA = """
CREATE TABLE IF NOT EXISTS approvals (
    id TEXT PRIMARY KEY, status TEXT NOT NULL, created_at REAL NOT NULL, expires_at REAL NOT NULL,
    proposal TEXT NOT NULL, preflight TEXT NOT NULL, health TEXT NOT NULL, blast TEXT, revert_plan TEXT,
    llm_rationale TEXT, decision TEXT, decided_at REAL, result TEXT
);
CREATE TABLE IF NOT EXISTS nonces (nonce TEXT PRIMARY KEY, key_id TEXT NOT NULL, used_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS native_documents (approval_id TEXT PRIMARY KEY, document TEXT NOT NULL,
    source TEXT NOT NULL);
"""
NATIVE_KIND = "native_experiment"


class DecisionRefused(Exception):
    def __init__(self, status: int, code: str, reason: str, field: str | None = None) -> None:
        self.status, self.code, self.reason, self.field = status, code, reason, field
        super().__init__(f"{code}: {reason}")


def make_decision(approval_id: str, verb: str, proposal_key: str, key: KeyPair, *, operator: str, now: float,
                  ttl_s: float = 300.0, reason: str = "") -> dict[str, Any]:
    """A signed decision document, as `samantha approvals approve|deny` sends it."""
    doc = {"approval_id": approval_id, "decision": verb, "proposal_key": proposal_key, "operator": operator,
           "issued_at": now, "expires_at": now + ttl_s, "nonce": secrets.token_hex(16), "reason": reason}
    return sign_document(doc, key)


class ApprovalQueue(ChaosTables):
    """`on_record`: told of each new item (its `request_record`); the daemon queues it up to the hub."""

    def __init__(self, service: Any, *, on_record: Callable[[dict[str, Any]], None] | None = None,
                 on_closed: Callable[[str, str], None] | None = None) -> None:
        """`on_closed(id, status)`: an item left `pending` (decided or expired); its alert resolves."""
        self.service = service
        self.config, self.cc, self.clock = service.config, service.cc, service.clock
        super().__init__(self.config.resolve(self.cc.db), SCHEMA)
        self.graph = ChaosGraph(_Nodes(service, self), self.config.resolve(self.cc.checkpoint_path))
        self.on_record, self.on_closed = on_record, on_closed

    def _closed(self, aid: str, status: str) -> None:
        if self.on_closed is not None:
            try:
                self.on_closed(aid, status)
            except Exception:  # telling the operator must never stop the chaos thread
                log.exception("approval %s: closing its alert failed", aid)

    def close(self) -> None:
        self.graph.close()
        super().close()

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
        cur = self._exec("INSERT OR IGNORE INTO approvals (id, status, created_at, expires_at, proposal, preflight, "
                         "health, blast, revert_plan, llm_rationale) VALUES (?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?)",
                         (s["thread_id"], now, now + self.cc.approval_ttl_s, json.dumps({**p, "key": Proposal(**p).key}),
                          json.dumps(pre), json.dumps(health, default=str), json.dumps(pre.get("blast")),
                          (pre.get("blast") or {}).get("revert"),
                          p.get("rationale") if p.get("source") == "llm" else None))
        if cur.rowcount == 1 and self.on_record is not None:
            try:
                self.on_record(request_record(self.get(s["thread_id"])))  # type: ignore[arg-type]
            except Exception:  # reporting upward must never stop the chaos thread; the item is in the queue
                log.exception("approval request %s not queued for the hub", s["thread_id"])

    # --- other parts' escalations (a rollout's grey zone: samantha/rollout/escalation.py) ---------
    def ask(self, request: dict[str, Any]) -> str:
        """Queue a request that no chaos thread waits on: the asker polls `decision`. Idempotent by its id.
        The operator signs a decision for it exactly as for an experiment (same checks, same proposal key)."""
        aid = str(request["id"])
        p = {"kind": request["kind"], "target": request["target"], "params": request.get("params") or {},
             "source": "operator", "title": request.get("title", "")}
        pre = {"verdict": "escalate", "reasons": [{"code": str(request["kind"]).replace("_", "-"),
                                                   "severity": "escalate", "message": request.get("reason", "")}],
               "blast": {"role": "standby", "weight": (request.get("params") or {}).get("weight"),
                         "revert": request.get("on_deny")}}
        now = self.clock.time()
        cur = self._exec("INSERT OR IGNORE INTO approvals (id, status, created_at, expires_at, proposal, preflight, "
                         "health, blast, revert_plan, llm_rationale) VALUES (?, 'pending', ?, ?, ?, ?, ?, ?, ?, NULL)",
                         (aid, now, now + self.cc.approval_ttl_s, json.dumps({**p, "key": Proposal(**p).key}),
                          json.dumps(pre), json.dumps({"verdicts": request.get("verdicts") or []}, default=str),
                          json.dumps(pre["blast"]), request.get("on_deny")))
        if cur.rowcount == 1 and self.on_record is not None:
            try:
                self.on_record(request_record(self.get(aid)))  # type: ignore[arg-type]
            except Exception:  # reporting upward must never stop the asker; the item is in the queue
                log.exception("approval request %s not queued for the hub", aid)
        return aid

    def ask_native(self, doc: dict[str, Any], preflight: dict[str, Any], source: str) -> dict[str, Any]:
        """Queue an escalated native document with its reasons (`preflight`: the NativeVerdict's record, with
        its `activities`). Nothing runs until an operator approves; the item is returned."""
        aid = "apr-" + uuid.uuid4().hex[:16]
        sha = sha256_hex(canonical_json(doc))
        targets = sorted({a["target"] for a in preflight.get("activities", []) if a.get("target")})
        p = {"kind": NATIVE_KIND, "target": ",".join(targets) or "cube", "source": "operator",
             "title": str(doc.get("title", "")), "params": {"document_sha256": sha, "source": source}}
        pre = {**preflight, "blast": None}
        now = self.clock.time()
        self._exec("INSERT INTO native_documents VALUES (?, ?, ?)", (aid, json.dumps(doc), source))
        self._exec("INSERT INTO approvals (id, status, created_at, expires_at, proposal, preflight, health, blast, "
                   "revert_plan, llm_rationale) VALUES (?, 'pending', ?, ?, ?, ?, ?, NULL, ?, NULL)",
                   (aid, now, now + self.cc.approval_ttl_s, json.dumps({**p, "key": Proposal(**p).key}),
                    json.dumps(pre), json.dumps({}), "the document's rollbacks (always run), then every ledger "
                    "entry of the run reverted"))
        item = self.get(aid)
        if self.on_record is not None:
            try:
                self.on_record(request_record(item))  # type: ignore[arg-type]
            except Exception:  # reporting upward must never stop the submitter; the item is in the queue
                log.exception("approval request %s not queued for the hub", aid)
        return item  # type: ignore[return-value]

    def native_document(self, aid: str) -> dict[str, Any] | None:
        r = self._exec("SELECT document FROM native_documents WHERE approval_id = ?", (aid,)).fetchone()
        return json.loads(r[0]) if r else None

    def _run_native(self, aid: str, doc: dict[str, Any]) -> dict[str, Any]:
        item = self.get(aid) or {}
        codes = {r["code"] for r in (item.get("preflight") or {}).get("reasons", []) if r["severity"] == "escalate"}
        out = self.service.execute_native_approved(doc, codes, aid)
        self.set_status(aid, "executed" if out.get("outcome") != "refused_at_execution" else "refused", out)
        return out

    def decision(self, aid: str) -> str | None:
        self.expire_due()
        item = self.get(aid)
        return item["status"] if item else None

    def withdraw(self, aid: str, why: str) -> None:
        cur = self._exec("UPDATE approvals SET status = 'refused', result = ? WHERE id = ? AND status = 'pending'",
                         (json.dumps({"outcome": "withdrawn", "why": why}), aid))
        if cur.rowcount == 1:
            self._closed(aid, "refused")

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
        """Every check a local decision must pass. Returns the operator; raises DecisionRefused naming what failed."""
        if self.get(aid) is None:
            raise DecisionRefused(404, "unknown_approval", f"no approval {aid}", "approval_id")
        who = self._local_operator(doc)
        self._check_item(aid, doc, expect, who["key_id"], proposal_required=True)
        return who

    def _local_operator(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Trust from the Cube's operators file: signature, key expiry, role, and the decision's own window."""
        try:
            ops = load_operators(self.config.resolve(self.config.api.operators_file))
        except DocumentError as e:
            raise DecisionRefused(500, "bad_operators_file", str(e)) from None
        trusted: dict[str, PublicKey] = {}
        by_id: dict[str, OperatorSpec] = {}
        for o in ops.operators:
            if o.public_key:
                pk = PublicKey.from_b64(o.public_key)  # validated when the file loaded
                trusted[pk.key_id], by_id[pk.key_id] = pk, o
        try:
            key_id = verify_document(doc, trusted)
        except SignatureError as e:
            raise DecisionRefused(403, "bad_signature", str(e), "signature") from None
        op, now = by_id[key_id], self.clock.time()
        if op.expired(now):
            raise DecisionRefused(403, "operator_key_expired", f"operator key of {op.name} expired", "signature")
        if op.role not in DECIDING_ROLES:
            raise DecisionRefused(403, "role", f"{op.name} has role {op.role}: only {', '.join(DECIDING_ROLES)} "
                                  "may decide", "signature")
        issued, expires = doc.get("issued_at"), doc.get("expires_at")
        if not isinstance(issued, int | float) or not isinstance(expires, int | float):
            raise DecisionRefused(422, "invalid", "issued_at and expires_at must be epoch seconds", "expires_at")
        if expires <= now:
            raise DecisionRefused(403, "decision_expired", "the signed decision has expired", "expires_at")
        if issued > now + 60 or now - issued > self.cc.decision_max_age_s:
            raise DecisionRefused(403, "decision_stale", f"issued_at is more than {self.cc.decision_max_age_s:g} s "
                                  "old or in the future", "issued_at")
        return {"operator": op.name, "role": op.role, "key_id": key_id}

    def _check_item(self, aid: str, doc: dict[str, Any], expect: str, key_id: str, *, proposal_required: bool) -> None:
        """What any trusted decision must also match: the verb, this item, its exact proposal, an unused nonce,
        an item still pending. The nonce is spent here, so the same document is never applied twice."""
        item = self.get(aid)
        if item is None:
            raise DecisionRefused(404, "unknown_approval", f"no approval {aid}", "approval_id")
        if doc.get("decision") != expect:
            raise DecisionRefused(422, "wrong_decision", f"the signed decision is {doc.get('decision')!r}, "
                                  f"this endpoint takes {expect!r}", "decision")
        if doc.get("approval_id", doc.get("request_id")) != aid:
            raise DecisionRefused(422, "wrong_item", "the decision was signed for another approval", "approval_id")
        if (proposal_required or doc.get("proposal_key") is not None) and \
                doc.get("proposal_key") != item["proposal"].get("key"):
            raise DecisionRefused(422, "wrong_proposal", "the decision was signed for another proposal",
                                  "proposal_key")
        nonce = doc.get("nonce")
        if not isinstance(nonce, str) or len(nonce) < 16:
            raise DecisionRefused(422, "invalid", "nonce must be a string of >= 16 characters", "nonce")
        try:
            self._exec("INSERT INTO nonces VALUES (?, ?, ?)", (nonce, key_id, self.clock.time()))
        except sqlite3.IntegrityError:
            raise DecisionRefused(409, "replay", "this decision (nonce) was already used", "nonce") from None
        self.expire_due()
        item = self.get(aid)
        if item is None or item["status"] != "pending":
            raise DecisionRefused(409, "not_pending", f"approval {aid} is {item['status'] if item else 'gone'}",
                                  "approval_id")

    def decide(self, aid: str, doc: dict[str, Any], *, expect: str) -> dict[str, Any]:
        return self._apply(aid, doc, expect, self.verify(aid, doc, expect))

    def accept_relayed(self, doc: dict[str, Any], who: dict[str, Any]) -> tuple[str, str]:
        """A decision the hub relayed, whose signer the uplink already verified against the policy module's
        `approve` keys (`uplink.operator_docs.check_operator_doc`: signature, cube, nonce, window). Only the
        item checks remain. Returns (approval id, verb) for `apply_relayed`; raises DecisionRefused."""
        aid, verb = doc.get("request_id"), doc.get("decision")
        if not isinstance(aid, str) or verb not in ("approve", "deny"):
            raise DecisionRefused(422, "invalid", "request_id and decision (approve|deny) are required", "request_id")
        self._check_item(aid, doc, verb, who["key_id"], proposal_required=False)
        return aid, verb

    def apply_relayed(self, aid: str, verb: str, doc: dict[str, Any], who: dict[str, Any]) -> dict[str, Any]:
        """Record the decision and resume the thread (an approval runs the experiment: slow)."""
        return self._apply(aid, doc, verb, {**who, "via": "hub"})

    def decide_web(self, aid: str, doc: dict[str, Any], cube: PublicKey) -> dict[str, Any]:
        """A console decision: signed by the Cube key for the logged-in operator (the console checked the role)."""
        verb, who = self.accept_web(aid, doc, cube)
        return self._apply(aid, doc, verb, who)

    def accept_web(self, aid: str, doc: dict[str, Any], cube: PublicKey) -> tuple[str, dict[str, Any]]:
        """The checks of a console decision; returns (verb, who). Raises DecisionRefused naming what failed."""
        try:
            verify_document(doc, {cube.key_id: cube})
        except SignatureError as e:
            raise DecisionRefused(403, "bad_signature", str(e), "signature") from None
        verb = doc.get("decision")
        if verb not in ("approve", "deny"):
            raise DecisionRefused(422, "wrong_decision", f"decision must be approve or deny, not {verb!r}", "decision")
        if doc.get("approval_id") != aid:
            raise DecisionRefused(422, "wrong_item", "the decision was signed for another approval", "approval_id")
        self.expire_due()
        item = self.get(aid)
        if item is None or item["status"] != "pending":
            raise DecisionRefused(409, "not_pending", f"approval {aid} is {item['status'] if item else 'gone'}",
                                  "approval_id")
        who = {"operator": doc.get("operator"), "role": doc.get("role"), "key_id": cube.key_id, "via": "web"}
        return verb, who

    def mark_decided(self, aid: str, doc: dict[str, Any], expect: str, who: dict[str, Any]) -> None:
        """Record the decision; only a pending item takes one (a racing second decision is refused here)."""
        status = "approved" if expect == "approve" else "denied"
        cur = self._exec("UPDATE approvals SET status = ?, decision = ?, decided_at = ? WHERE id = ? AND "
                         "status = 'pending'", (status, json.dumps({**doc, "verified": who}), self.clock.time(), aid))
        if cur.rowcount != 1:
            item = self.get(aid)
            raise DecisionRefused(409, "not_pending", f"approval {aid} is {item['status'] if item else 'gone'}",
                                  "approval_id")
        self._closed(aid, status)

    def resume(self, aid: str, expect: str, who: dict[str, Any]) -> dict[str, Any]:
        """Resume the waiting thread (an approval runs the experiment: slow)."""
        if not self.graph.waiting(aid):  # an item `ask` queued: its asker reads the status `mark_decided` wrote
            native = self.native_document(aid) if expect == "approve" else None
            if native is not None:
                return {"result": self._run_native(aid, native), "approval": self.get(aid)}
            item = self.get(aid)
            return {"approval": item, "result": {"outcome": item["status"] if item else None}}
        out = self.graph.resume(aid, {"decision": expect, **who})
        return {"approval": self.get(aid), "result": out.get("result")}

    def _apply(self, aid: str, doc: dict[str, Any], expect: str, who: dict[str, Any]) -> dict[str, Any]:
        self.mark_decided(aid, doc, expect, who)
        return self.resume(aid, expect, who)

    def expire_due(self) -> list[str]:
        now = self.clock.time()
        due = [r[0] for r in self._exec("SELECT id FROM approvals WHERE status = 'pending' AND expires_at <= ?",
                                        (now,)).fetchall()]
        for aid in due:
            self.set_status(aid, "expired")
            self._closed(aid, "expired")
            if self.graph.waiting(aid):
                self.graph.resume(aid, {"decision": "expired"})
        return due


def request_record(item: dict[str, Any]) -> dict[str, Any]:
    """An approval request as the hub queues it: what an operator needs to sign a decision (`samantha hub decide
    <id> --proposal-key <key>`)."""
    p = item["proposal"]
    return {"id": item["id"], "ts": item["created_at"], "expires_at": item["expires_at"], "kind": p.get("kind"),
            "target": p.get("target"), "params": p.get("params"), "proposal_key": p.get("key"),
            "reasons": [{"code": r["code"], "severity": r["severity"], "message": r["message"]}
                        for r in (item.get("preflight") or {}).get("reasons", [])],
            "blast_radius": item.get("blast"), "revert_plan": item.get("revert_plan")}


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


class ConsoleApprovals:
    """The queue as the web console's `ApprovalsPort`."""

    def __init__(self, queue: ApprovalQueue, cube: PublicKey) -> None:
        self.queue, self.cube = queue, cube
        self.threads: list[threading.Thread] = []

    @staticmethod
    def _view(a: dict[str, Any]) -> dict[str, Any]:
        p = a["proposal"]
        return {**a, "title": f"{p.get('kind')} on {p.get('target')}", "created_ts": a["created_at"],
                "verdict": (a.get("preflight") or {}).get("verdict"), "blast_radius": a.get("blast"),
                "rationale": a.get("llm_rationale")}

    def list(self, limit: int) -> list[dict[str, Any]]:
        return [self._view(a) for a in self.queue.list()[:limit]]

    def get(self, approval_id: str) -> dict[str, Any] | None:
        a = self.queue.get(approval_id)
        return self._view(a) if a else None

    def decide_signed(self, approval_id: str, decision: dict[str, Any]) -> dict[str, Any]:
        """Checked and recorded now; the experiment (or the refusal) runs in a thread of its own, so the browser
        gets its answer at once and the page follows the item to its end."""
        verb, who = self.queue.accept_web(approval_id, decision, self.cube)
        self.queue.mark_decided(approval_id, decision, verb, who)
        t = threading.Thread(target=self._resume, args=(approval_id, verb, who), name=f"web-{approval_id}",
                             daemon=True)
        self.threads = [x for x in self.threads if x.is_alive()] + [t]
        t.start()
        return {"approval": self.queue.get(approval_id), "result": None}

    def _resume(self, aid: str, verb: str, who: dict[str, Any]) -> None:
        try:
            self.queue.resume(aid, verb, who)
        except Exception as e:  # the item must not stay "approved" forever: the page shows why it stopped
            log.exception("web decision %s on %s failed", verb, aid)
            self.queue.set_status(aid, "failed", {"outcome": "error", "error": f"{type(e).__name__}: {e}"[:500]})

    def progress(self, approval_id: str) -> dict[str, Any] | None:
        """The experiment an approval started, while it runs: its record and its injections so far."""
        svc = self.queue.service
        exp = next((e for e in svc.records.experiments(20) if e.get("approval_id") == approval_id), None)
        if exp is None:
            return None
        return {"experiment": exp, "injections": svc.ledger.entries(exp["id"])}


class RelayedDecisions:
    """The uplink's `on_decision`: a decision relayed by the hub (or carried in a policy module) goes through the
    queue's item checks at once (a refusal is reported back to the uplink, which audits and alerts), then runs in
    a thread of its own, because an approved experiment takes as long as it takes and the uplink must keep syncing."""

    def __init__(self, queue: ApprovalQueue, audit: Any) -> None:
        self.queue, self.audit = queue, audit
        self.threads: list[threading.Thread] = []

    def __call__(self, doc: dict[str, Any], checked: Any, source: str) -> str | None:
        who = {"operator": checked.doc.operator, "role": "approve", "key_id": checked.signer,
               "relayed_by": source}
        try:
            aid, verb = self.queue.accept_relayed(doc, who)
        except DecisionRefused as e:
            return f"{e.code}: {e.reason}"
        t = threading.Thread(target=self._apply, args=(aid, verb, doc, who), name=f"relayed-{aid}", daemon=True)
        self.threads = [x for x in self.threads if x.is_alive()] + [t]
        t.start()
        return None

    def _apply(self, aid: str, verb: str, doc: dict[str, Any], who: dict[str, Any]) -> None:
        try:
            out = self.queue.apply_relayed(aid, verb, doc, who)
            res = out.get("result") or {}
            self.audit.append("approval_decided", {"approval_id": aid, "decision": verb, "operator": who["operator"],
                                                   "key_id": who["key_id"], "via": f"relayed by {who['relayed_by']}",
                                                   "status": (out.get("approval") or {}).get("status"),
                                                   "outcome": res.get("outcome"),
                                                   "experiment_id": res.get("experiment_id")})
        except Exception as e:  # the daemon goes on; the item keeps the status the graph reached
            log.exception("relayed decision %s on %s failed", verb, aid)
            self.audit.append("approval_decided", {"approval_id": aid, "decision": verb, "operator": who["operator"],
                                                   "via": f"relayed by {who['relayed_by']}",
                                                   "error": f"{type(e).__name__}: {e}"[:300]})

