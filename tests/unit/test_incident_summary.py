"""The code-written incident summary (pure logic): every sentence renders a field of the record."""

from __future__ import annotations

from samantha.reporting.incident_summary import summarize

T = 1_800_000_000.0
VERDICT = {"gate": "active-error-burst", "kind": "threshold", "status": "fail", "reason": "error_rate mean = 0.49 not <= 0.2",
           "ts": T + 1, "window": [T, T + 1], "samples": {"n": 212},
           "values": {"observed": 0.4906, "bound": 0.2, "aggregate": "mean"}}
INCIDENT = {"id": "inc-1", "key": "active:0123456789abcdef", "status": "open", "opened_ts": T + 1, "closed_ts": None,
            "gates": ["active-error-burst"], "evidence": {"active-error-burst": VERDICT}, "refusals": [],
            "actions": ["act-1", "act-2"]}
FLIP = {"id": "act-1", "kind": "flip", "status": "verified", "created_ts": T + 1.2, "done_ts": T + 1.6,
        "proposed": {"target_bundle": "fedcba9876543210"},
        "result": {"verification": {"method": "traffic_left", "what": "bundle 0123456789ab", "last_bad_ts": T + 1.61,
                                    "served_elsewhere_after": 48, "error_rate_after": 0.0}}}
ALERT = {"id": "act-2", "kind": "alert", "status": "done", "created_ts": T + 1.2}


def test_what_failed_where_what_was_done_and_its_verified_effect() -> None:
    s = summarize(INCIDENT, [FLIP, ALERT])
    assert s.headline == "active-error-burst failed on the active slot, bundle 0123456789abcdef."
    assert "mean 0.4906 vs threshold 0.2 (n=212; 1 s window" in s.text
    assert "flipped traffic to the standby slot at" in s.text and "(+0.60 s after opening): verified" in s.text
    assert "48 requests served elsewhere since with error rate 0" in s.text and s.text.endswith("Open.")
    closed = summarize({**INCIDENT, "status": "closed", "closed_ts": T + 31}, [FLIP])
    assert "Resolved at" in closed.text and "30.0 s after opening" in closed.text


def test_no_action_and_an_unverified_one_say_so() -> None:
    refused = {**INCIDENT, "refusals": [{"violated": ["flip-rate-limit"]}], "actions": []}
    assert "took no action at the Cube (refused: flip-rate-limit)" in summarize(refused, []).text
    pending = summarize(INCIDENT, [{**FLIP, "status": "done", "result": None}]).text
    assert "done, awaiting verification" in pending and "traffic left" not in pending
    assert "FAILED (effect not seen)" in summarize(INCIDENT, [{**FLIP, "status": "failed",
                                                              "result": {"reason": "effect not seen"}}]).text
