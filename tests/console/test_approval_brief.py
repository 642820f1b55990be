"""The approval page's plain-words brief and outcome (pure logic over queue items), and the approval alerts
(a real DuckDB alert table and outbox, delivered to a real webhook receiver on loopback)."""

from __future__ import annotations

from pathlib import Path

import duckdb

from samantha.api.console.brief import approval_brief, blast_svg, outcome, rollout_progress
from samantha.core.clock import SimClock
from samantha.core.config import AlertsConfig
from samantha.daemon.alerting import ApprovalAlerts
from samantha.uplink.alerts import AlertManager
from tests.kernel.test_alerts import Receiver

ITEM = {
    "id": "apr-1", "status": "pending", "created_at": 1000.0, "expires_at": 1600.0,
    "proposal": {"kind": "kill_slot", "target": "active", "params": {"duration_s": 10}},
    "preflight": {"verdict": "escalate", "reasons": [
        {"code": "active-slot-down", "severity": "escalate", "message": "kills the active slot", "rule": "pf-a"},
        {"code": "revert-untested", "severity": "escalate", "message": "revert never verified",
         "rule": "pf-revert-tested"}]},
    "blast": {"kind": "kill_slot", "target": "active", "touches": ["slot"], "role": "active", "traffic_share": 1.0,
              "live_share": 0.9, "duration_s": 10.0, "reversible": True, "revert": "restart the slot",
              "path_down": True},
    "health": {"gates": [{"name": "a", "status": "pass"}, {"name": "b", "status": "inconclusive"}],
               "error_budget_remaining": 0.42},
}


def test_brief_says_what_why_blast_revert_health_and_expiry_in_words() -> None:
    d = approval_brief(ITEM, [{"gate": "a", "status": "pass"}, {"gate": "c", "status": "fail", "reason": "x"}],
                       now=1300.0)
    assert d["what"].startswith("Inject kill slot into the active slot") and d["duration"] == "10.0 s"
    assert [(r["rule"], r["code"]) for r in d["reasons"]] == [("pf-a", "active-slot-down"),
                                                               ("pf-revert-tested", "revert-untested")]
    b = d["blast"]
    assert b["live_share"] == 0.9 and b["active_only_path"] and b["path_down"] and b["error_budget"] == 0.42
    assert "live traffic touched 90%" in b["svg"] and "error budget left 42%" in b["svg"]
    assert d["revert"] == {"plan": "restart the slot", "reversible": True, "tested": False}
    assert d["health_live"] and d["lights"] == {"green": 1, "amber": 0, "red": 1}
    assert d["expires_in"] == "5.0 min" and not d["expired"]
    # no live verdicts: the snapshot taken at request time, said so
    d = approval_brief({**ITEM, "preflight": {**ITEM["preflight"], "reasons": []}}, [], now=1700.0)
    assert not d["health_live"] and d["lights"] == {"green": 1, "amber": 1, "red": 0}
    assert d["revert"]["tested"] and d["expired"]


def test_outcome_follows_an_item_to_its_end() -> None:
    assert outcome(ITEM, None)["phase"] == "waiting for a decision"
    approved = {**ITEM, "status": "approved"}
    assert outcome(approved, None)["phase"] == "starting"
    running = outcome(approved, {"experiment": {"id": "exp-1"}, "injections": [{"kind": "kill_slot",
                                                                                 "state": "injected"}]})
    assert running["phase"] == "running" and not running["final"] and not running["reverted"]
    done = outcome({**ITEM, "status": "executed", "result": {
        "outcome": "completed", "experiment_id": "exp-1", "injections": [{"kind": "kill_slot", "state": "reverted"}],
        "findings": [{"kind": "path_latency", "text": "p99 rose 12 ms"}], "learned_gates": [{"name": "g-1"}]}}, None)
    assert done["final"] and done["phase"] == "completed" and done["reverted"]
    assert done["findings"] == ["p99 rose 12 ms"] and done["learned"] == ["g-1"]
    assert outcome({**ITEM, "status": "failed", "result": {"error": "ChaosBusy: busy"}}, None)["error"] == \
        "ChaosBusy: busy"


def test_rollout_progress_in_numbers() -> None:
    assert rollout_progress({"rollout": {"phase": "idle", "rollout": None}}, 0) is None
    rec = {"bundle_label": "m@2", "phase": "soak", "step": 4, "steps": [1, 5, 25, 50, 100], "reason": "soaking"}
    v = {"canary_samples": 120, "min_samples": 20, "elapsed_s": 2.0, "min_duration_s": 5.0,
         "verdicts": [{"gate": "canary-errors", "status": "pass", "reason": "ok"}]}
    p = rollout_progress({"rollout": {"rollout": rec, "weight": 100.0, "last_verdict": v}}, 0)
    assert p["step"] == "5 of 5" and p["samples"] == 120 and p["soak_left"] == "3.0 s"
    assert p["gates"][0]["light"] == "green" and not p["final"]
    assert blast_svg(None, None, None).count("unknown") == 6  # label and value text for each bar


def test_an_approval_request_alerts_with_its_link_and_a_decision_resolves_it(tmp_path: Path) -> None:
    rx = Receiver().start()
    conn = duckdb.connect(str(tmp_path / "samantha.duckdb"))
    try:
        am = AlertManager(conn, AlertsConfig(receivers=[rx.url], timeout_s=2), SimClock(start=1000.0))
        aa = ApprovalAlerts(am, lambda: "http://127.0.0.1:8080")
        aa.requested({"id": "apr-1", "kind": "kill_slot", "target": "active", "expires_at": 1600.0,
                      "reasons": [{"code": "active-slot-down", "message": "kills the active slot"}]})
        [a] = am.active()
        assert a.annotations["console_url"] == "http://127.0.0.1:8080/console/approvals/apr-1"
        assert "[active-slot-down]" in a.summary
        aa.closed("apr-2", "denied")  # another item: nothing changes
        assert len(am.active()) == 1
        aa.closed("apr-1", "expired")
        assert am.active() == []
        assert am.deliver()["sent"] == 2
        sent = [(x["status"], x["annotations"].get("outcome")) for b in rx.bodies for x in b["alerts"]]
        assert sent == [("firing", None), ("resolved", "expired")]
    finally:
        conn.close()
        rx.stop()
