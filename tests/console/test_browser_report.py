"""The HTML report in real headless Chromium: each incident's headline is the code-written summary, and the
local LLM's words appear only where the verifier passed them (an unfaithful answer is never shown)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from samantha.core.domain import ProbableCause
from samantha.llm.triage import TriageResult
from samantha.llm.triage_input import TriageInput, VerdictEvidence
from samantha.llm.verifier import verified_triage
from samantha.reporting.incident_summary import summarize
from samantha.reporting.records_access import open_reader
from samantha.reporting.report import _ledger_rows, write_report  # the ledger as the report reads it
from tests.console.browser import ARTIFACTS, assert_accessible, browser
from tests.console.fixture_records import T0, build_store

FAITHFUL = "active-errors breached on resnet-v7 in the active slot: 0.4 against 0.2; the flip worked."
UNFAITHFUL = "resnet-v9 crashed after 12 s, so the flip failed."


def _triage(incident: str, text: str) -> dict:
    inp = TriageInput(incident_id=incident, active_bundle="resnet-v7", standby_bundle="resnet-v8", verdicts=[
        VerdictEvidence(gate="active-errors", kind="error_rate", slot="active", bundle="resnet-v7",
                        observed=0.4, threshold=0.2)])
    res = TriageResult(incident_id=incident, cause=ProbableCause.bad_bundle, confidence=0.6, summary=text,
                       allowed_actions=["flip", "alert"], source="llm", rule_cause=ProbableCause.unknown, rule="x")
    return verified_triage(inp, res, {"flip": "verified"})


@pytest.mark.timeout(180)
def test_report_headlines_are_the_code_summary_and_only_verified_llm_text_shows(tmp_path: Path) -> None:
    db = tmp_path / "telemetry.duckdb"
    build_store(db, tmp_path / "bundles")
    kept, refused = _triage("inc-a", FAITHFUL), _triage("inc-b", UNFAITHFUL)
    assert kept["advisory"] == FAITHFUL and refused["advisory"] is None and refused["rejected"]
    con = duckdb.connect(str(db))
    for iid, tri in (("inc-a", kept), ("inc-b", refused)):
        con.execute("UPDATE incidents SET triage = ?, summary = ? WHERE id = ?",
                    [json.dumps(tri), "Stale text a writer left", iid])
    con.close()

    with open_reader(db) as read:
        out = write_report(read, T0, T0 + 86400, tmp_path / "report.html", cube="cube-test")
        incidents = read("SELECT * "
                         "FROM incidents ORDER BY opened_ts", []).to_pylist()
    assert out["incidents"] == 3
    expected = {}
    for r in incidents:
        for k in ("gates", "playbooks", "evidence", "refusals", "triage"):
            r[k] = json.loads(r[k]) if isinstance(r[k], str) else r[k]
    with open_reader(db) as read:
        for r in incidents:
            ledger = _ledger_rows(read, r["id"])
            expected[r["id"]] = summarize({**r, "actions": [a["id"] for a in ledger]}, ledger).headline

    with browser() as b:
        page = b.new_context(viewport={"width": 1280, "height": 900}).new_page()
        page.goto((tmp_path / "report.html").as_uri())
        shown = [t.strip() for t in page.locator("p.summary b").all_inner_texts()]
        assert len(shown) == 3
        for iid, text in zip(sorted(expected, key=lambda i: [x["id"] for x in incidents].index(i)), shown,
                             strict=True):
            assert text.startswith(expected[iid]), (iid, text)  # the code-written headline leads
        assert "Stale text a writer left" not in page.content()  # re-derived from the evidence, not the row
        advisories = page.locator("p.advisory").all_inner_texts()
        assert len(advisories) == 1 and FAITHFUL in advisories[0]
        assert UNFAITHFUL not in page.content() and "resnet-v9" not in page.content()
        assert_accessible(page, "report")
        shot = ARTIFACTS.parent / "report" / "report-incidents.png"
        shot.parent.mkdir(parents=True, exist_ok=True)
        page.locator("#incidents").scroll_into_view_if_needed()
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        assert "None" not in page.inner_text("body")  # an absent value reads as nothing, never as "None"
