"""The uplink's bookkeeping of Recalls on a real DuckDB file (no broker, no Cube): what it audits, alerts and
queues upward, once per reason, and that a Recall applied is never applied again.

The Cube side is the daemon's action path (tested end to end in tests/fleet/test_recall_e2e.py); here it is
the `on_recall` seam, answering blocked until a last-known-good bundle "arrives", then applied.
"""

from __future__ import annotations

import secrets

from samantha.core.clock import SimClock
from samantha.uplink.local import local_service
from samantha.uplink.recall import RECALL_KIND, sign_recall
from tests.sre.kit import audit_records
from tests.uplink.kit import cube_config, hub_key

BUNDLE = "ef" * 32


def recall(key, **kw):
    return sign_recall({"kind": RECALL_KIND, "bundle_id": BUNDLE, "nonce": secrets.token_hex(8),
                        "issued_at": 1_800_000_000.0, "operator": "ana", "reason": "bad outputs", **kw}, key)


def test_blocked_then_applied_once_refusals_said_once(tmp_path):
    cfg = cube_config(tmp_path, "nats://127.0.0.1:9")  # never dialled: nothing here syncs
    key = hub_key(cfg)
    clock = SimClock(1_800_000_100.0)
    calls, lkg = [], {"ready": False}

    def on_recall(bundle, nonce, reason):
        calls.append(bundle)
        if not lkg["ready"]:
            return {"status": "blocked", "reason": "no last-known-good bundle in standby", "was_active": True,
                    "actions": []}
        return {"status": "applied", "reason": "", "was_active": True,
                "actions": [{"kind": "flip", "status": "done"}, {"kind": "quarantine", "status": "done"}]}

    with local_service(cfg, clock, on_recall=on_recall) as svc:
        doc = recall(key)
        for _ in range(3):  # the stream serves it every round: blocked, said once
            assert svc.submit_recall(doc, "hub")["status"] == "blocked"
        assert [a.name for a in svc.alerts.active()] == ["samantha_recall_blocked"]
        forged = {**doc, "reason": "edited"}
        for _ in range(2):
            out = svc.submit_recall(forged, "hub")
            assert out == {"status": "refused", "reason": "signature: signature does not verify"}
        assert svc.submit_recall("{not json", "hub")["reason"] == "not a JSON object"

        lkg["ready"] = True
        clock.advance(5)
        out = svc.submit_recall(doc, "hub")
        assert out == {"status": "applied", "applied_at": clock.time()}
        assert "samantha_recall_blocked" not in [a.name for a in svc.alerts.active()]
        again = svc.submit_recall(recall(key), "hub")  # another nonce, the same bundle: nothing to do
        assert again["status"] == "already_applied" and again["nonce"] == doc["nonce"]
        assert svc.submit_recall(doc, "hub")["status"] == "already_applied"
        assert calls == [BUNDLE] * 4  # three blocked tries and the one that applied, never after
        [applied] = svc.recalls()
        assert applied["bundle_id"] == BUNDLE and applied["was_active"] and applied["applied_at"] == clock.time()

        svc.outbox.collect(clock.time())
        with svc.outbox.lock:
            rows = svc.conn.execute("SELECT kind, records FROM outbox WHERE kind = 'recalls'").fetchall()
            audit = audit_records(svc.conn, "kind LIKE 'recall_%'")
        assert sum(r[1] for r in rows) == 4, rows  # blocked, refused (forged), refused (malformed), applied
        assert [(k, p["status"]) for k, p in audit] == [("recall_blocked", "blocked"), ("recall_refused", "refused"),
                                                        ("recall_refused", "refused"), ("recall_applied", "applied")]
        assert audit[-1][1]["actions"][0]["kind"] == "flip" and audit[-1][1]["ts"] == clock.time()
