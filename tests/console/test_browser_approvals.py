"""Approving and denying escalated chaos experiments in the web console, in real headless Chromium,
against a real daemon (`samantha run`, chaos mode composed in) governing a real twin, with a real
Alertmanager-webhook receiver on loopback."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from samantha.api.client import auth_headers
from samantha.core.operators import add_operator
from tests.console.browser import ARTIFACTS, above_fold, assert_accessible, browser, login
from tests.kernel.test_alerts import Receiver
from tests.sre.kit import twin_and_daemon, wait_for

EXPERIMENTS = Path(__file__).parents[2] / "experiments"
TTL_S = 60.0  # short, so the test also sees a request expire


def _escalate(url: str, headers: dict[str, str], template: str) -> dict[str, Any]:
    """Submit a template until pre-flight escalates it (the gates need a few seconds of traffic first)."""
    def once() -> dict[str, Any] | None:
        r = httpx.post(f"{url}/v1/chaos/run", headers=headers, timeout=120,
                       json={"template": (EXPERIMENTS / template).read_text(), "source": template})
        assert r.status_code == 200, r.text
        out = r.json()
        return out if out["outcome"] == "escalated" else None

    return wait_for(once, 90, f"{template} escalated", interval=1.0)


def _alerts(rx: Receiver, aid: str) -> list[str]:
    return [a["status"] for b in rx.bodies for a in b["alerts"] if a["labels"].get("approval") == aid]


def _audited_refusals(page: Any, url: str) -> set[tuple[str, str]]:
    """(approval id, code) of each `approval_refused` record on the console's Audit page (the signed chain)."""
    page.goto(f"{url}/console/audit")
    out = set()
    for row in page.locator("table tr").all()[1:]:
        cells = row.locator("td").all_inner_texts()
        if len(cells) == 4 and cells[2] == "approval_refused":
            p = json.loads(cells[3])
            out.add((p["approval_id"], p["code"]))
    return out


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_decision_first_page_approve_returns_at_once_deny_needs_reason_expired_cannot_be_decided(
        tmp_path: Path) -> None:
    rx = Receiver().start()
    try:
        with twin_and_daemon(tmp_path, chaos={"probe_interval_s": 0.3, "approval_ttl_s": TTL_S},
                             alerts={"receivers": [rx.url]}) as (twin, daemon), browser() as b:
            _run(twin, daemon, b, rx)
    finally:
        rx.stop()


def _run(twin: Any, daemon: Any, b: Any, rx: Receiver) -> None:
    cfg = daemon.config
    token = add_operator(cfg.resolve(cfg.api.operators_file), "carol", "approver")
    viewer = add_operator(cfg.resolve(cfg.api.operators_file), "vic", "viewer")
    admin = auth_headers(cfg)
    drill = _escalate(daemon.url, admin, "rollback-drill.yaml")  # its revert path is untested: an operator decides
    kill = _escalate(daemon.url, admin, "kill-active-slot.yaml")
    did, kid = drill["approval"]["id"], kill["approval"]["id"]
    active_before = twin.cube.state().active

    # an operator is told: each request raises an Alertmanager alert linking to its page
    wait_for(lambda: "firing" in _alerts(rx, did) and "firing" in _alerts(rx, kid), 30, "approval alerts")
    fired = next(a for body in rx.bodies for a in body["alerts"] if a["labels"].get("approval") == did)
    assert fired["annotations"]["console_url"] == f"{daemon.url}/console/approvals/{did}"

    ctx = b.new_context(viewport={"width": 1280, "height": 800})
    page = ctx.new_page()
    page.set_default_timeout(30_000)
    login(page, daemon.url, token)
    page.click("text=Approvals")
    assert_accessible(page, "approval queue")

    # the decision-first page: every decision-critical fact above the fold at 1280x800
    page.goto(f"{daemon.url}/console/approvals/{did}")
    for sel in ("#what", "#slot", "#path", "#duration", "#reasons", "#blast svg", "#only-path", "#revert",
                "#revert-tested", "#health", "#expiry", "#approve", "#deny"):
        above_fold(page, sel)
    reasons = page.inner_text("#reasons")
    assert "revert-untested" in reasons and "pf-revert-tested" in reasons, reasons
    assert "never tested on this Cube" in page.inner_text("#revert-tested")
    assert "error budget left" in page.inner_text("#blast")
    assert page.locator("#health li").count() >= 1
    assert not page.locator("#raw").evaluate("d => d.open")  # the raw documents: collapsed, still there
    assert "revert-untested" in page.locator("#ctx-preflight").text_content()
    assert_accessible(page, "approval page")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "approval-before.png"))

    # a viewer reads it and cannot decide
    vpage = b.new_context(viewport={"width": 768, "height": 1024}).new_page()
    login(vpage, daemon.url, viewer)
    vpage.goto(f"{daemon.url}/console/approvals/{did}")
    assert "cannot decide" in vpage.inner_text("#cannot-decide")
    assert vpage.evaluate("document.documentElement.scrollWidth") <= 768  # usable on a tablet: no sideways scroll
    vcsrf = vpage.locator("input[name=csrf]").first.get_attribute("value")
    r = vpage.request.post(f"{daemon.url}/console/approvals/{did}/decide",
                           form={"csrf": vcsrf, "decision": "approve", "reason": "x"})
    assert r.status == 403 and "needs approver" in r.text()
    # a forged CSRF token: refused with the reason, nothing applied
    r = page.request.post(f"{daemon.url}/console/approvals/{did}/decide",
                          form={"csrf": "forged", "decision": "approve", "reason": "x"})
    assert r.status == 403 and "CSRF" in r.text()

    # deny needs a reason: the browser will not submit an empty one, and the server refuses it on the page
    page.goto(f"{daemon.url}/console/approvals/{kid}")
    page.click("#deny")
    assert "Confirm: deny" in page.inner_text("h1")
    assert_accessible(page, "confirmation page")
    page.click("#confirm")  # empty reason: the form's `required` keeps us here
    assert "/confirm" in page.url
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    r = page.request.post(f"{daemon.url}/console/approvals/{kid}/decide",
                          form={"csrf": csrf, "decision": "deny", "reason": "  "})
    assert r.status == 422 and "needs a reason" in r.text()
    assert httpx.get(f"{daemon.url}/v1/chaos/approvals/{kid}", headers=admin, timeout=30).json()["status"] \
        == "pending"

    # approve by keyboard: the answer comes at once; the page follows the experiment to its end by itself
    page.goto(f"{daemon.url}/console/approvals/{did}")
    page.focus("#approve")
    page.keyboard.press("Enter")
    page.wait_for_url("**/confirm?decision=approve")
    page.focus("#reason")
    page.keyboard.type("reviewed the blast radius and the revert plan")
    page.focus("#confirm")
    t0 = time.monotonic()
    page.keyboard.press("Enter")
    page.wait_for_url(f"{daemon.url}/console/approvals/{did}")
    answered_s = time.monotonic() - t0
    assert answered_s < 5, f"the decision took {answered_s:.1f} s to answer"
    assert page.inner_text("#approval-status") in ("approved", "executed")
    page.wait_for_function("document.querySelector('#phase') && ['running'].includes("
                           "document.querySelector('#phase').textContent) || "
                           "document.querySelector('#approval-status').textContent === 'executed'", timeout=60_000)
    page.screenshot(path=str(ARTIFACTS / "approval-running.png"))
    url_before = page.url
    page.wait_for_function("document.querySelector('#live').dataset.final === '1'", timeout=180_000)
    assert page.url == url_before  # no reload: the fragment was swapped in
    assert int(page.get_attribute("#live", "data-polls") or 0) >= 1
    assert page.inner_text("#approval-status") == "executed", page.inner_text("#live")
    assert page.inner_text("#phase") == "completed", page.locator("#ctx-result").text_content()[:2000]
    assert "all reverted" in page.inner_text("#injections")
    assert "Findings:" in page.inner_text("#findings") and "Gates learned:" in page.inner_text("#learned")
    assert "carol" in page.inner_text("#decided-by")
    page.screenshot(path=str(ARTIFACTS / "approval-done.png"), full_page=True)
    assert_accessible(page, "approval page, done")
    assert twin.cube.state().active == active_before  # the drill flipped and flipped back
    wait_for(lambda: "resolved" in _alerts(rx, did), 30, "the decided request's alert resolved")

    # the kill is left undecided: it expires, its alert resolves, and it can no longer be decided
    wait_for(lambda: httpx.get(f"{daemon.url}/v1/chaos/approvals/{kid}", headers=admin, timeout=30).json()["status"]
             == "expired", TTL_S + 30, "the kill request expired")
    page.goto(f"{daemon.url}/console/approvals/{kid}")
    assert "can no longer be decided" in page.inner_text("#expiry")
    assert page.locator("#approve").count() == 0
    resp = page.goto(f"{daemon.url}/console/approvals/{kid}/confirm?decision=approve")
    assert resp is not None and resp.status == 409 and "can no longer be decided" in page.inner_text(".reason")
    page.goto(f"{daemon.url}/console/approvals/{kid}")
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    r = page.request.post(f"{daemon.url}/console/approvals/{kid}/decide",
                          form={"csrf": csrf, "decision": "approve", "reason": "too late"})
    assert r.status == 409 and "expired" in r.text()
    wait_for(lambda: "resolved" in _alerts(rx, kid), 30, "the expired request's alert resolved")
    ran = httpx.get(f"{daemon.url}/v1/chaos/experiments", headers=admin, timeout=30).json()["experiments"]
    assert [e["approval_id"] for e in ran] == [did]  # nothing refused was applied

    # every refused attempt is in the audit log, with its reason
    codes = _audited_refusals(page, daemon.url)
    assert {(did, "forbidden"), (did, "csrf"), (kid, "no_reason"), (kid, "not_pending")} <= codes, codes
    assert "chain intact" in page.inner_text("#chain")
    assert_accessible(page, "audit page")
