"""The web console in real headless Chromium against a real daemon (`samantha run`)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.console.browser import ARTIFACTS, assert_accessible, browser, login
from tests.console.kit import console_daemon


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_console_login_pages_timeline_and_roles(tmp_path: Path) -> None:
    with console_daemon(tmp_path) as d, browser() as b:
        ctx = b.new_context(viewport={"width": 1280, "height": 900})
        page = ctx.new_page()

        # a wrong token: stays on the login page with the reason
        page.goto(f"{d.url}/console/login")
        assert_accessible(page, "login page")
        page.fill("input[name=token]", "sam_wrong")
        page.click("button")
        assert "matches no trusted operator" in page.inner_text("#login-error")

        login(page, d.url, d.tokens["admin"])
        assert page.inner_text("#who") == "admin-op (admin)"
        cookie = next(c for c in ctx.cookies() if c["name"] == "samantha_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert "Safe mode" in page.content() and "Link: hub" in page.content()
        assert "uplink-last-sync" in page.content()  # the drift SLOs, evaluated live

        assert page.locator("#open-incidents li").count() >= 1
        assert_accessible(page, "status page")
        page.click("text=Gates")
        assert page.locator("#gates tr").count() > 1  # the shipped playbooks' gates, with live verdicts
        assert_accessible(page, "gates page")
        page.click("text=Audit")
        assert "chain intact" in page.inner_text("#chain")
        assert_accessible(page, "audit page")
        page.click("text=Experiments")
        assert "Experiments" in page.inner_text("h1")
        assert_accessible(page, "experiments page")
        page.click("text=Approvals")
        assert_accessible(page, "approvals page")

        # incidents: the hand-built records served by the real daemon; the timeline is an inline SVG
        page.click("text=Incidents")
        assert page.locator("#incidents tr").count() == 4
        assert_accessible(page, "incidents page")
        page.click("text=incident inc-a")
        svg = page.locator("#timeline svg")
        assert svg.count() == 1
        box = svg.bounding_box()
        assert box and box["width"] > 500 and box["height"] > 250
        assert page.locator("#timeline svg path").count() > 10  # drawn lines, not an empty frame
        assert "flip" in page.inner_text("#actions")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / "incident-timeline.png"
        page.locator("#timeline").screenshot(path=str(shot))
        assert shot.stat().st_size > 20_000  # a real rendering (axes, three panels, lines), not a blank box
        page.screenshot(path=str(ARTIFACTS / "incident-page.png"), full_page=True)
        assert_accessible(page, "incident page")
        # every page is usable at 768 px (a tablet held upright): no sideways scroll of the page itself
        page.set_viewport_size({"width": 768, "height": 1024})
        for path in ("/console/", "/console/gates", "/console/incidents", page.url, "/console/approvals",
                     "/console/experiments", "/console/audit"):
            page.goto(path if path.startswith("http") else d.url + path)
            assert page.evaluate("document.documentElement.scrollWidth") <= 768, path
        page.set_viewport_size({"width": 1280, "height": 900})

        # a session cannot be replayed cross-site: a form post without the CSRF token is refused
        r = page.request.post(f"{d.url}/console/logout", form={"csrf": "forged"})
        assert r.status == 403 and "CSRF" in r.text()
        page.click("text=log out")
        page.wait_for_url(f"{d.url}/console/login")
        page.goto(f"{d.url}/console/audit")
        assert "/console/login" in page.url

        # a viewer sees everything and can decide nothing
        vpage = b.new_context().new_page()
        login(vpage, d.url, d.tokens["viewer"])
        resp = vpage.goto(f"{d.url}/console/approvals/any/confirm?decision=approve")
        assert resp is not None and resp.status == 403
        assert "needs approver" in vpage.inner_text(".reason")
        csrf = vpage.locator("input[name=csrf]").first.get_attribute("value") if vpage.locator(
            "input[name=csrf]").count() else ""
        vpage.goto(f"{d.url}/console/")
        csrf = vpage.locator("input[name=csrf]").first.get_attribute("value")
        r = vpage.request.post(f"{d.url}/console/approvals/any/decide",
                               form={"csrf": csrf, "decision": "approve", "reason": "x"})
        assert r.status == 403 and "needs approver" in r.text()
        # the approver passes authorisation (the queue then answers: no such request here)
        apage = b.new_context().new_page()
        login(apage, d.url, d.tokens["approver"])
        csrf = apage.locator("input[name=csrf]").first.get_attribute("value")
        r = apage.request.post(f"{d.url}/console/approvals/any/decide",
                               form={"csrf": csrf, "decision": "approve", "reason": "x"})
        assert r.status == 404
        # a viewer's token still cannot mutate through the JSON API either
        assert httpx.post(f"{d.url}/v1/rollout/abort", json={"reason": "x"}, headers=d.bearer("viewer")).status_code == 403
