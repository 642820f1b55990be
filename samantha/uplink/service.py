"""`UplinkService`: the uplink as one object the daemon ticks (or the CLI runs when no daemon does).

Each `tick(now)`:
1. collects new Reported State (and final DORA facts) into the outbox and enforces its disk budget;
2. when the hub is configured and the backoff allows: pulls the policy module, pulls
   relayed operator documents and Recalls (NATS), uploads (bounded by `uplink.sync_max_s`);
3. evaluates safe mode and applies its effects (audit, alert, `CubeRuntime.safe_mode`);
4. writes the drift-SLO gauges the staleness gates read.
Nothing in a tick needs the network to succeed: offline, steps 1, 3 and 4 still run.

Merge rules (DESIGN.md principle 4): a module from the hub replaces local policy only
through `PolicyStore.offer` (signed, newer, unexpired), and on a Cube with a pinned TUF root only as a target
the fleet's TUF metadata lists (kernel rule `module-tuf`, checked first); reported state only goes up;
approval decisions and overrides are verified against the module's operator keys.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from samantha.core.clock import Clock
from samantha.core.config import SamanthaConfig
from samantha.core.fsutil import atomic_write
from samantha.core.signing import KeyPair, PublicKey, canonical_json, load_public_keys, sha256_hex
from samantha.core.supply import TufFacts
from samantha.cube.tuf_meta import TufCache, parse_metadata_set, tuf_cache
from samantha.gates.engine import GateEngine
from samantha.gates.spec import StalenessGate
from samantha.kernel.supply import judge_module
from samantha.telemetry.store import SampleBatch, TelemetryStore
from samantha.uplink.dora_facts import queue_dora_facts
from samantha.uplink.nats_link import NatsLink
from samantha.uplink.operator_docs import DECISION_KIND, OVERRIDE_KIND, Checked, check_operator_doc
from samantha.uplink.outbox import Outbox
from samantha.uplink.policy_module import Offer, PolicyStore, doc_sha, tuf_target
from samantha.uplink.recall import check_recall
from samantha.uplink.safe_mode import SafeModeState, next_state, with_override
from samantha.uplink.uploader import ProgressFn, Uploader

log = logging.getLogger(__name__)

SAFE_ALERT_KEY = "uplink:safe_mode"
M_LAST_SYNC = "samantha_last_sync_timestamp_seconds"
M_POLICY_ISSUED = "samantha_policy_issued_timestamp_seconds"
M_POLICY_EXPIRES = "samantha_policy_expires_timestamp_seconds"
M_BUNDLE_EXPIRES = "cube_bundle_expires_timestamp_seconds"
M_FLEET_DIVERGENCE = "cube_fleet_divergence"

# (raw doc, its verified form, source) -> None when applied, else why not. Given by the daemon when it has an
# approval queue; without one every relayed decision is refused.
DecisionHandler = Callable[[dict[str, Any], Checked, str], str | None]
NO_QUEUE = "no approval queue on this Cube (chaos mode is off)"
# (bundle id, nonce, reason) -> {"status": "applied" | "blocked", "reason", "was_active", "actions"}: the daemon's
# action path (samantha/loop/recall.py). Without one (no daemon) a Recall waits, blocked, for the daemon.
RecallHandler = Callable[[str, str, str], dict[str, Any]]
NO_DAEMON = "no daemon acts on this Cube now: the recall applies when `samantha run` is up"

_RECALLS_DDL = """CREATE TABLE IF NOT EXISTS uplink_recalls (
    bundle_id VARCHAR NOT NULL, nonce VARCHAR NOT NULL, received_at DOUBLE NOT NULL, applied_at DOUBLE NOT NULL,
    signer VARCHAR, was_active BOOLEAN NOT NULL, outcome VARCHAR NOT NULL, doc VARCHAR NOT NULL)"""

_DECISIONS_DDL = """CREATE TABLE IF NOT EXISTS uplink_decisions (
    received_at DOUBLE NOT NULL, source VARCHAR NOT NULL, kind VARCHAR, status VARCHAR NOT NULL,
    reason VARCHAR NOT NULL, signer VARCHAR, doc VARCHAR NOT NULL)"""


def make_outbox(config: SamanthaConfig, conn: Any, clock: Clock) -> Outbox:
    """The uplink's outbox on `conn`, sized by `uplink.outbox_budget_fraction` of the store's disk budget."""
    u = config.uplink
    budget = int(config.store.disk_budget_mb * 1024 * 1024 * u.outbox_budget_fraction)
    return Outbox(conn, clock, budget_bytes=budget, batch_span_s=u.batch_span_s,
                  batch_max_records=u.batch_max_records, bucket_s=config.store.rollup_bucket_s)


class UplinkService:
    """`outbox`: one built beforehand (`make_outbox`) when other parts append to it before the service exists (the
    daemon's approval queue); its connection is the service's. Else the service builds it on `conn` (or on a
    connection of its own)."""

    def __init__(self, config: SamanthaConfig, store: TelemetryStore, clock: Clock, *, key: KeyPair | None = None,
                 conn: Any = None, alerts: Any = None, audit: Any = None, cube: Any = None,
                 bundle_expires_at: Callable[[], float | None] | None = None,
                 supply_hold: Callable[[], str | None] | None = None,
                 on_decision: DecisionHandler | None = None, on_recall: RecallHandler | None = None,
                 http: httpx.Client | None = None, outbox: Outbox | None = None, tuf: TufCache | None = None) -> None:
        u = config.uplink
        self.config, self.cfg, self.store, self.clock = config, u, store, clock
        self.alerts, self.audit, self.cube = alerts, audit, cube
        self.bundle_expires_at, self.on_decision, self.on_recall = bundle_expires_at, on_decision, on_recall
        self.supply_hold = supply_hold  # why the supply is held (stale TUF metadata, the kernel's rules): safe mode too
        self.cube_id = u.cube_id or (key.public.key_id if key is not None else "cube")
        self.dir = config.resolve(u.dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        if outbox is not None:
            conn = outbox.conn
        self._own_conn = conn is None
        self.conn = conn if conn is not None else store.connection()
        self.outbox = outbox if outbox is not None else make_outbox(config, self.conn, clock)
        self.outbox.protect(store.retention)
        with self.outbox.lock:
            self.conn.execute(_DECISIONS_DDL)
            self.conn.execute(_RECALLS_DDL)
        if self.outbox.get_state("uplink:first_start") is None:
            self.outbox.set_state(**{"uplink:first_start": clock.time()})
        self.policy = PolicyStore(self.dir, load_public_keys(config.resolve(u.hub_keys)), channel=u.channel)
        # a pinned TUF root (`twin.tuf_root`): a module from the hub must also be a TUF target (the daemon passes
        # its intake's cache: one trusted state for bundles and modules)
        self.tuf = tuf if tuf is not None else tuf_cache(config, clock)
        self._http = http or httpx.Client(timeout=httpx.Timeout(u.timeout_s, connect=min(3.0, u.timeout_s)))
        # nats://host:port[,nats://...]: the hub on JetStream (docs/hub.md); http(s)://: the HTTP hub
        self.link = (NatsLink(self.outbox, [x.strip() for x in u.hub_url.split(",")], self.cube_id, clock,
                              region=u.region, channel=u.channel, timeout_s=u.timeout_s,
                              on_policy=lambda doc, md: self.offer_module(doc, source="hub", metadata=md),
                              tuf=self.tuf is not None,
                              on_operator_doc=lambda doc: self.submit_operator_doc(doc, source="hub"),
                              on_recall=lambda doc: self.submit_recall(doc, source="hub"))
                     if u.hub_url and u.hub_url.startswith(("nats://", "tls://")) else None)
        self.uploader = (Uploader(self.outbox, u.hub_url, self.cube_id, clock, timeout_s=u.timeout_s,
                                  backoff_initial_s=u.backoff_initial_s, backoff_max_s=u.backoff_max_s,
                                  http=self._http) if u.hub_url and self.link is None else None)
        self.engine = GateEngine(store, clock)
        self._lock = threading.RLock()
        self.safe = self._load_safe()
        self.last_tick: dict[str, Any] = {}
        self.last_offer: dict[str, Any] | None = None
        self._refused: dict[str, Offer] = {}
        self._tuf_verified: str | None = None  # the (module, TUF metadata) pair last verified and in force
        self._recall_said: dict[str, str] = {}  # doc sha or bundle id -> the refusal or block last recorded

    def close(self) -> None:
        if self.link is not None:
            self.link.close()
        self._http.close()
        if self._own_conn:
            self.conn.close()

    # ---------------- the tick ----------------

    def tick(self, now: float | None = None, *, sync: bool = True) -> dict[str, Any]:
        with self._lock:
            now = self.clock.time() if now is None else now
            self.store.flush()
            out: dict[str, Any] = {"collected": {**self.outbox.collect(now), **queue_dora_facts(self.outbox)},
                                   "budget": self.outbox.enforce_budget()}
            if sync and self.link is not None:  # off this thread: a dead broker costs the tick nothing
                out["link"] = self.link.kick(self.cfg.sync_max_s)
            elif sync and self.uploader is not None and self.uploader.due(now):
                out.update(self._exchange(force=False, max_seconds=self.cfg.sync_max_s))
            out["safe_mode"] = self.evaluate_safe_mode(now).safe
            self.write_metrics(now)
            out["drift"] = self.drift(now)
            self.last_tick = {"at": now, **out}
            return out

    def force_sync(self, progress: ProgressFn | None = None, max_seconds: float | None = None) -> dict[str, Any]:
        """Now, whatever the backoff: pull policy and decisions, upload everything pending."""
        if self.link is not None:
            with self._lock:
                self.store.flush()
                self.outbox.collect(self.clock.time())
                queue_dora_facts(self.outbox)
                self.outbox.enforce_budget()
            out = self.link.run(max_seconds)  # not under the lock: the round applies what it pulls
            out["safe_mode"] = self.evaluate_safe_mode(self.clock.time()).safe
            self.write_metrics(self.clock.time())
            return out
        with self._lock:
            if self.uploader is None:
                return {"ok": False, "error": "uplink.hub_url is not configured"}
            now = self.clock.time()
            self.store.flush()
            self.outbox.collect(now)
            queue_dora_facts(self.outbox)
            self.outbox.enforce_budget()
            out = self._exchange(force=True, max_seconds=max_seconds, progress=progress)
            out["safe_mode"] = self.evaluate_safe_mode(self.clock.time()).safe
            self.write_metrics(self.clock.time())
            return out

    def _exchange(self, *, force: bool, max_seconds: float | None, progress: ProgressFn | None = None
                  ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        try:
            out["policy"] = self.pull_policy()
            out["decisions"] = self.pull_decisions()
        except (httpx.HTTPError, ValueError) as e:
            out["pull_error"] = f"{type(e).__name__}: {e}"[:300]
        assert self.uploader is not None
        out["sync"] = self.uploader.sync(force=force, max_seconds=max_seconds, progress=progress).as_dict()
        return out

    # ---------------- inbound: policy module ----------------

    def _hub(self, path: str) -> str:
        return f"{self.cfg.hub_url.rstrip('/')}{path}"  # type: ignore[union-attr]

    def pull_policy(self) -> dict[str, Any]:
        r = self._http.get(self._hub("/v1/policy"))
        if r.status_code == 404:
            return {"status": "none_published"}
        if r.status_code != 200:
            raise httpx.HTTPError(f"policy: HTTP {r.status_code}")
        try:
            doc = r.json()
        except ValueError:
            doc = None
        metadata = None
        if self.tuf is not None:  # the fleet's TUF metadata listing the module (404: none published)
            t = self._http.get(self._hub("/v1/policy/tuf"))
            if t.status_code not in (200, 404):
                raise httpx.HTTPError(f"policy tuf metadata: HTTP {t.status_code}")
            try:
                metadata = t.json() if t.status_code == 200 else None
            except ValueError:
                metadata = {}  # not JSON: refused, naming the field
        return self.offer_module(doc, source="hub", metadata=metadata).as_dict()

    def _module_tuf(self, doc: Any, metadata: Any) -> tuple[Offer | None, TufFacts | None]:
        """The kernel's `module-tuf` rule over the TUF client's verdict on the module: the fleet repository lists
        it (target `policy/<channel>.json`, its canonical JSON), under fresh metadata. A refusal, or None."""
        assert self.tuf is not None
        target = tuf_target(self.cfg.channel)
        version = doc.get("version") if isinstance(doc, dict) and isinstance(doc.get("version"), int) else None
        try:
            data = canonical_json(doc)
        except (TypeError, ValueError):
            return None, None  # not a JSON document: the policy store refuses it as invalid
        facts: TufFacts | None = None
        if metadata is not None:
            try:
                facts = self.tuf.check_target(parse_metadata_set(metadata), target, data)
            except ValueError as e:
                facts = TufFacts(outcome="malformed", role="metadata", reason=str(e), target=target)
        d = judge_module(True, facts)
        if d.allowed:
            return None, facts
        return Offer("refused", f"{d.reason} (supply rule {d.rule})", d.kind, version,
                     f"tuf.{facts.role if facts is not None and facts.role else 'timestamp'}"), facts

    def offer_module(self, doc: Any, source: str, metadata: Any = None) -> Offer:
        """The only way policy changes: verified, newer, unexpired, applied atomically; else refused + alert.
        From the hub on a Cube with a pinned TUF root, `metadata` (the fleet's TUF metadata set) must list it first."""
        with self._lock:
            now = self.clock.time()
            tufd = self.tuf is not None and source == "hub"
            try:
                sha = doc_sha(doc) if isinstance(doc, dict) else None
                if sha is not None and tufd:  # fresh metadata for the same module is judged again
                    sha += ":" + ("none" if metadata is None else sha256_hex(canonical_json(metadata)))
            except (TypeError, ValueError):
                sha = None
            if sha is not None and self._refused.get(sha) is not None and source == "hub":
                return self._refused[sha]  # the hub still serves a module refused before: said once, not per tick
            # the pair verified at the last pull (the hub serves the module in force again): the same bytes need no
            # second TUF run per round; the trusted metadata's own expiry is the `tuf-stale` hold's job
            again = tufd and sha is not None and sha == self._tuf_verified
            refusal, tuf = self._module_tuf(doc, metadata) if tufd and not again else (None, None)
            offer = refusal or self.policy.offer(doc, now)
            if offer.refused and sha is not None:
                self._refused = {sha: offer}
            if tufd and refusal is None and tuf is not None and not offer.refused:
                self._tuf_verified = sha
            via = {"tuf": tuf.model_dump(exclude_none=True)} if tuf is not None else {}
            if offer.status == "applied":
                self._audit("policy_applied", {"version": offer.version, "source": source,
                                               "sha256": self.policy.current().sha256, **via})  # type: ignore[union-attr]
                self._resolve_refusals()
                for d in self.policy.current().module.approval_decisions:  # type: ignore[union-attr]
                    self.submit_operator_doc(d, source="policy_module")
                self.evaluate_safe_mode(now)
            elif offer.status == "unchanged" and tuf is not None:
                self._resolve_refusals()  # the module in force is listed again under fresh metadata
            elif offer.refused:
                log.warning("policy module from %s refused: %s", source, offer.reason)
                self._audit("policy_refused", {"source": source, **offer.as_dict(), **via})
                if self.alerts is not None:
                    self.alerts.fire("samantha_policy_module_refused", "warning",
                                     f"policy module v{offer.version} from {source} refused: {offer.reason}",
                                     {"code": offer.code, "source": source},
                                     key=f"uplink:policy_refused:{offer.code}:{offer.version}")
            self.last_offer = {"at": now, "source": source, **offer.as_dict()}  # after its effects: status is consistent
            return offer

    def _resolve_refusals(self) -> None:
        if self.alerts is not None:
            for a in self.alerts.active():
                if a.key.startswith("uplink:policy_refused"):
                    self.alerts.resolve(a.key)

    # ---------------- inbound: operator documents ----------------

    def pull_decisions(self) -> dict[str, Any]:
        after = int(float(self.outbox.get_state("uplink:decisions_after") or 0))
        r = self._http.get(self._hub(f"/v1/cubes/{self.cube_id}/decisions"), params={"after": after})
        if r.status_code != 200:
            raise httpx.HTTPError(f"decisions: HTTP {r.status_code}")
        got = r.json().get("decisions") or []
        results = []
        for d in got:
            results.append(self.submit_operator_doc(d.get("doc"), source="hub").ok)
            after = max(after, int(d.get("seq", after)))
        self.outbox.set_state(**{"uplink:decisions_after": after})
        return {"received": len(got), "accepted": sum(results)}

    def operator_keys(self, role: str) -> dict[str, PublicKey]:
        cur = self.policy.current()
        return cur.module.operators(role) if cur is not None else {}  # type: ignore[arg-type]

    def submit_operator_doc(self, doc: Any, source: str) -> Checked:
        """A relayed or local override / approval decision: verified, applied, recorded; a refusal alerts."""
        with self._lock:
            now = self.clock.time()
            kind = doc.get("kind") if isinstance(doc, dict) else None
            role = "override" if kind == OVERRIDE_KIND else "approve"
            used = set(self.safe.used_nonces) | self._decision_nonces()
            checked = check_operator_doc(doc, cube=self.cube_id, keys=self.operator_keys(role), now=now,
                                         used_nonces=used,
                                         max_lifetime_s=self.cfg.max_override_s if kind == OVERRIDE_KIND else None)
            d = checked.doc
            if checked.ok and kind == OVERRIDE_KIND:
                self._save_safe(with_override(self.safe, until=d.expires_at, by=d.operator, nonce=d.nonce))  # type: ignore[union-attr]
                self.evaluate_safe_mode(now)
            elif checked.ok and kind == DECISION_KIND:
                refusal = self.on_decision(doc, checked, source) if self.on_decision is not None else NO_QUEUE
                if refusal:
                    checked = Checked(False, refusal, d, checked.signer)
            with self.outbox.lock:
                self.conn.execute("INSERT INTO uplink_decisions VALUES (?, ?, ?, ?, ?, ?, ?)",
                                  [now, source, kind, "accepted" if checked.ok else "refused", checked.reason,
                                   checked.signer, json.dumps(doc, sort_keys=True, default=str)])
            get = doc.get if isinstance(doc, dict) else (lambda _k: None)
            self._audit("operator_doc", {
                "source": source, "via": f"relayed by {source}" if source == "hub" else source, "kind": kind,
                "ok": checked.ok, "reason": checked.reason, "signer": checked.signer, "operator": get("operator"),
                "nonce": get("nonce"), "request_id": get("request_id"), "decision": get("decision")})
            if not checked.ok and self.alerts is not None:
                what = "approval decision" if kind == DECISION_KIND else "override" if kind == OVERRIDE_KIND else "doc"
                self.alerts.fire("samantha_operator_doc_refused", "warning",
                                 f"operator {what} from {source} refused: {checked.reason}"[:500],
                                 {"source": source, "kind": str(kind)}, key=f"uplink:operator_doc_refused:{kind}")
            return checked

    def _decision_nonces(self) -> set[str]:
        with self.outbox.lock:
            rows = self.conn.execute("SELECT doc FROM uplink_decisions WHERE status = 'accepted'").fetchall()
        return {json.loads(r[0]).get("nonce") for r in rows}

    def decisions(self, limit: int = 100) -> list[dict[str, Any]]:
        cols = ("received_at", "source", "kind", "status", "reason", "signer", "doc")
        with self.outbox.lock:
            rows = self.conn.execute(f"SELECT {', '.join(cols)} FROM uplink_decisions ORDER BY received_at DESC "
                                     f"LIMIT {int(limit)}").fetchall()
        return [{**dict(zip(cols, r, strict=True)), "doc": json.loads(r[-1])} for r in rows]

    # ---------------- inbound: Recalls ----------------

    def recalls(self) -> list[dict[str, Any]]:
        """The Recalls applied on this Cube, newest first."""
        cols = ("bundle_id", "nonce", "received_at", "applied_at", "signer", "was_active", "outcome")
        with self.outbox.lock:
            rows = self.conn.execute(f"SELECT {', '.join(cols)} FROM uplink_recalls ORDER BY applied_at DESC"
                                     ).fetchall()
        return [{**dict(zip(cols, r, strict=True)), "outcome": json.loads(r[-1])} for r in rows]

    def submit_recall(self, doc: Any, source: str) -> dict[str, Any]:
        """A Recall from the root: verified against the hub keys, applied once per bundle through the daemon's
        action path, audited and reported upward ("recall applied", with its time). A refused or blocked one
        is audited, alerted and reported once per reason; the Cube keeps running either way."""
        with self._lock:
            now = self.clock.time()
            checked = check_recall(doc, keys=self.policy.trusted, now=now)
            if not checked.ok:
                try:
                    sha = doc_sha(doc) if isinstance(doc, dict) else f"raw:{doc!r}"[:200]
                except (TypeError, ValueError):  # not canonical JSON (NaN): keyed by its text
                    sha = f"raw:{doc!r}"[:200]
                bundle = doc.get("bundle_id") if isinstance(doc, dict) else None
                if self._recall_said.get(sha) != checked.reason:  # the stream still serves it: said once
                    self._recall_said[sha] = checked.reason
                    self._recall_event("refused", bundle if isinstance(bundle, str) else None, now, source,
                                       reason=checked.reason, nonce=doc.get("nonce") if isinstance(doc, dict) else None)
                return {"status": "refused", "reason": checked.reason}
            r = checked.doc
            assert r is not None
            with self.outbox.lock:
                prior = self.conn.execute("SELECT applied_at, nonce FROM uplink_recalls WHERE bundle_id = ?",
                                          [r.bundle_id]).fetchone()
            if prior is not None:  # a replay, or another recall of the same bundle: nothing more to do
                return {"status": "already_applied", "applied_at": prior[0], "nonce": prior[1]}
            try:
                outcome = (self.on_recall(r.bundle_id, r.nonce, r.reason) if self.on_recall is not None
                           else {"status": "blocked", "reason": NO_DAEMON, "was_active": False, "actions": []})
            except Exception as e:  # noqa: BLE001 - a failing step never stops the uplink; tried again next round
                log.exception("recall of %s", r.bundle_id)
                outcome = {"status": "blocked", "reason": f"{type(e).__name__}: {e}"[:500], "was_active": False,
                           "actions": []}
            if outcome["status"] != "applied":
                if self._recall_said.get(r.bundle_id) != outcome["reason"]:
                    self._recall_said[r.bundle_id] = outcome["reason"]
                    self._recall_event("blocked", r.bundle_id, now, source, reason=outcome["reason"], nonce=r.nonce,
                                       signer=checked.signer, actions=outcome.get("actions"))
                return {"status": "blocked", "reason": outcome["reason"]}
            applied_at = self.clock.time()
            with self.outbox.lock:
                self.conn.execute("INSERT INTO uplink_recalls VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                  [r.bundle_id, r.nonce, now, applied_at, checked.signer, bool(outcome["was_active"]),
                                   json.dumps(outcome, sort_keys=True, default=str),
                                   json.dumps(doc, sort_keys=True, default=str)])
            self._recall_event("applied", r.bundle_id, applied_at, source, reason=r.reason, nonce=r.nonce,
                               signer=checked.signer, was_active=bool(outcome["was_active"]),
                               actions=outcome.get("actions"), operator=r.operator)
            return {"status": "applied", "applied_at": applied_at}

    def _recall_event(self, status: str, bundle: str | None, ts: float, source: str, **detail: Any) -> None:
        """Audit, alert (not for an applied one) and report upward, one record per event."""
        rec = {"id": f"{self.cube_id}:{bundle}:{detail.get('nonce')}:{status}:{int(ts * 1000)}", "ts": ts,
               "cube": self.cube_id, "bundle_id": bundle, "status": status, "source": source, **detail}
        self._audit(f"recall_{status}", rec)
        if status != "applied" and self.alerts is not None:
            self.alerts.fire(f"samantha_recall_{status}", "critical" if status == "blocked" else "warning",
                             f"recall of {str(bundle)[:16]} {status}: {detail.get('reason')}"[:500],
                             {"source": source, "bundle": str(bundle)[:64]}, key=f"uplink:recall_{status}:{bundle}")
        elif self.alerts is not None:
            self.alerts.resolve(f"uplink:recall_blocked:{bundle}")
        try:
            self.outbox.append_records("recalls", [rec])
        except ValueError as e:  # never stops the Cube; the audit record above holds it
            log.warning("recall record not queued: %s", e)

    # ---------------- safe mode ----------------

    @property
    def _safe_path(self) -> Path:
        return self.dir / "safe_mode.json"

    def _load_safe(self) -> SafeModeState:
        try:
            return SafeModeState.model_validate_json(self._safe_path.read_text())
        except FileNotFoundError:
            return SafeModeState()

    def _save_safe(self, st: SafeModeState) -> None:
        atomic_write(self._safe_path, st.model_dump_json(indent=1).encode())
        self.safe = st

    def evaluate_safe_mode(self, now: float) -> SafeModeState:
        with self._lock:
            cur = self.policy.current()
            prev = self.safe
            hold = self.supply_hold() if self.supply_hold is not None else None
            st = next_state(prev, now=now, module_version=cur.module.version if cur else None,
                            module_expires_at=cur.module.expires_at if cur else None,
                            require_module=self.cfg.require_policy_module,
                            supply_hold=hold)
            if st != prev:
                # effects first, then the state: a crash in between repeats them (alerts dedup by key)
                if st.safe and not prev.safe:
                    self._on_enter(st)
                elif prev.safe and not st.safe:
                    self._on_leave(st)
                self._save_safe(st)
            self._apply_to_cube()
            return self.safe

    def _on_enter(self, st: SafeModeState) -> None:
        log.warning("entering safe mode: %s", st.reason)
        self._audit("safe_mode_entered", {"reason": st.reason, "since": st.since, "module": st.entered_version,
                                          "cause": st.cause})
        if self.alerts is not None:
            self.alerts.fire("samantha_safe_mode", "critical", f"safe mode: {st.reason}", {"cube": self.cube_id},
                             key=SAFE_ALERT_KEY)

    def _on_leave(self, st: SafeModeState) -> None:
        log.warning("leaving safe mode: %s", st.left_because)
        self._audit("safe_mode_left", {"because": st.left_because, "at": st.left_at})
        if self.alerts is not None:
            self.alerts.resolve(SAFE_ALERT_KEY)

    def _apply_to_cube(self) -> None:
        """Bring the Cube's safe-mode flag in line; only turn it off if the uplink turned it on."""
        if self.cube is None:
            return
        st = self.safe
        applied = self.outbox.get_state("uplink:cube_safe_applied") == "1"
        if st.safe == applied:
            return
        rid = f"uplink-safe-{'on' if st.safe else 'off'}-{int((st.since if st.safe else st.left_at) or 0)}"
        try:
            self.cube.safe_mode(st.safe, request_id=rid)
        except Exception as e:  # the Cube unreachable: try again next tick
            log.warning("cube safe_mode(%s) failed: %s", st.safe, e)
            return
        self.outbox.set_state(**{"uplink:cube_safe_applied": "1" if st.safe else "0"})

    # ---------------- drift SLOs ----------------

    def last_sync_at(self) -> float | None:
        v = self.outbox.get_state("uplink:last_sync_ok_at")
        return float(v) if v else None

    def _fleet_divergence(self, now: float) -> float | None:
        cur = self.policy.current()
        if cur is None or cur.module.fleet_baseline is None:
            return None
        local = self.store.query_scalar("SELECT avg(divergence) FROM requests WHERE ts >= ? AND divergence IS NOT NULL",
                                        [now - 3600.0])
        return None if local is None else abs(float(local) - cur.module.fleet_baseline.divergence_mean)

    def write_metrics(self, now: float) -> None:
        first = float(self.outbox.get_state("uplink:first_start") or now)
        cur = self.policy.current()
        gauges: dict[str, float | None] = {
            M_LAST_SYNC: self.last_sync_at() or first,  # never synced: stale since the first start
            M_POLICY_ISSUED: cur.module.issued_at if cur else None,
            M_POLICY_EXPIRES: cur.module.expires_at if cur else None,
            M_BUNDLE_EXPIRES: self.bundle_expires_at() if self.bundle_expires_at else None,
            M_FLEET_DIVERGENCE: self._fleet_divergence(now),
            "samantha_safe_mode": 1.0 if self.safe.safe else 0.0,
            "samantha_uplink_pending_bytes": float(self.outbox.pending_bytes()),
        }
        batches = [SampleBatch(m, {}, [now], [v]) for m, v in gauges.items() if v is not None]
        self.store.ingest_samples(batches)

    def drift_gates(self) -> list[StalenessGate]:
        cur = self.policy.current()
        m = cur.module if cur else None
        min_left = m.bundle_expiry.min_remaining_s if m else self.cfg.min_bundle_remaining_s
        max_div = (m.fleet_baseline.max_divergence if m and m.fleet_baseline and m.fleet_baseline.max_divergence
                   is not None else self.cfg.max_fleet_divergence)
        return [
            StalenessGate(name="uplink-last-sync", signal="last_sync", max_age=self.cfg.max_sync_age_s,
                          description="time since the last successful sync with the hub"),
            StalenessGate(name="policy-module-age", signal="policy_age", max_age=self.cfg.max_policy_age_s,
                          description="age of the policy module in force"),
            StalenessGate(name="policy-module-expiry", signal="bundle_expiry", metric=M_POLICY_EXPIRES,
                          min_remaining=0.0, description="the policy module in force has not expired"),
            StalenessGate(name="bundle-expiry", signal="bundle_expiry", min_remaining=min_left,
                          description="time left before the active bundle expires"),
            StalenessGate(name="fleet-divergence", signal="fleet_divergence", max_divergence=max_div,
                          description="|local - fleet baseline| shadow divergence"),
        ]

    def drift(self, now: float | None = None) -> list[dict[str, Any]]:
        now = self.clock.time() if now is None else now
        self.store.flush()
        return [{"gate": v.gate, "status": v.status, "reason": v.reason}
                for v in self.engine.evaluate(self.drift_gates(), now)]

    def console_view(self) -> dict[str, Any]:
        """The console's Status page: drift SLOs (as verdicts) and the link state in one line."""
        gates = {g.name: g.description for g in self.drift_gates()}
        slos = [{"name": d["gate"], "value": d["reason"], "limit": gates.get(d["gate"], ""), "status": d["status"]}
                for d in self.drift()]
        s = self.summary()
        since = "never" if s["since_last_sync_s"] is None else f"{s['since_last_sync_s']:g} s ago"
        link = (f"hub {s['hub_url'] or 'none (offline by design)'}; last sync {since}; "
                f"{s['pending_batches']} batches pending ({s['pending_bytes']} of {s['budget_bytes']} bytes); "
                f"safe mode {'ON: ' + str(s['safe_mode_reason']) if s['safe_mode'] else 'off'}")
        return {"slos": slos, "link": link}

    # ---------------- reporting ----------------

    def _audit(self, kind: str, payload: dict[str, Any]) -> None:
        if self.audit is not None:
            self.audit.append(kind, payload)

    def _uplink_alerts(self) -> list[dict[str, Any]]:
        if self.alerts is None:
            return []
        return [{"name": a.name, "severity": a.severity, "summary": a.summary} for a in self.alerts.active()
                if a.key.startswith("uplink:")]

    def summary(self) -> dict[str, Any]:
        """The cheap part of status (no gate evaluation), for `samantha status`."""
        now = self.clock.time()
        last = self.last_sync_at()
        cur = self.policy.current()
        ob = self.outbox.stats()
        bundle_exp = self.bundle_expires_at() if self.bundle_expires_at else None
        return {"hub_url": self.cfg.hub_url, "since_last_sync_s": None if last is None else round(now - last, 1),
                "pending_batches": ob["pending_batches"], "pending_bytes": ob["pending_bytes"],
                "budget_bytes": ob["budget_bytes"], "policy_version": cur.module.version if cur else None,
                "policy_expires_in_s": round(cur.module.expires_at - now, 1) if cur else None,
                "bundle_expires_in_s": None if bundle_exp is None else round(bundle_exp - now, 1),
                "safe_mode": self.safe.safe, "safe_mode_reason": self.safe.reason if self.safe.safe else None,
                "drift": list(self.last_tick.get("drift", []))}

    def status(self, now: float | None = None) -> dict[str, Any]:
        now = self.clock.time() if now is None else now
        last = self.last_sync_at()
        get = self.outbox.get_state
        return {
            "cube_id": self.cube_id,
            "hub_url": self.cfg.hub_url,
            "outbox": self.outbox.stats(),
            "last_sync_at": last,
            "since_last_sync_s": None if last is None else round(now - last, 1),
            "last_error": get("uplink:last_error") or None,
            "consecutive_failures": int(float(get("uplink:failures") or 0)),
            "next_attempt_at": float(get("uplink:next_attempt_at") or 0) or None,
            "policy": self.policy.info(now),
            "last_offer": self.last_offer,
            "safe_mode": self.safe.model_dump(exclude={"used_nonces"}),
            "recalls": self.recalls()[:20],
            "alerts": self._uplink_alerts(),
            "drift": self.drift(now),
        }
