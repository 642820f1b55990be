"""Approving and denying escalated chaos experiments in the web console, in real headless Chromium,
against a real daemon (`samantha run`, chaos mode composed in) governing a real twin."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from samantha.api.client import auth_headers
from samantha.core.operators import add_operator
from tests.console.browser import ARTIFACTS, browser, login
from tests.sre.kit import twin_and_daemon, wait_for

EXPERIMENTS = Path(__file__).parents[2] / "experiments"


def _escalate(url: str, headers: dict[str, str], template: str) -> dict[str, Any]:
    """Submit a template until pre-flight escalates it (the gates need a few seconds of traffic first)."""
    def once() -> dict[str, Any] | None:
        r = httpx.post(f"{url}/v1/chaos/run", headers=headers, timeout=120,
                       json={"template": (EXPERIMENTS / template).read_text(), "source": template})
        assert r.status_code == 200, r.text
        out = r.json()
        return out if out["outcome"] == "escalated" else None

    return wait_for(once, 90, f"{template} escalated", interval=1.0)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_approve_an_escalated_experiment_in_the_console_and_it_runs_deny_another(tmp_path: Path) -> None:
    with twin_and_daemon(tmp_path, chaos={"probe_interval_s": 0.3}) as (twin, daemon), browser() as b:
        cfg = daemon.config
        token = add_operator(cfg.resolve(cfg.api.operators_file), "carol", "approver")
        assert token
        admin = auth_headers(cfg)
        drill = _escalate(daemon.url, admin, "rollback-drill.yaml")  # its revert path is untested: an operator decides
        kill = _escalate(daemon.url, admin, "kill-active-slot.yaml")
        assert "active-slot-down" in {r["code"] for r in kill["preflight"]["reasons"]}
        active_before = twin.cube.state().active

        page = b.new_context(viewport={"width": 1280, "height": 900}).new_page()
        page.set_default_timeout(180_000)  # the approve request returns once the experiment has run
        login(page, daemon.url, token)
        page.click("text=Approvals")
        rows = page.inner_text("#approvals")
        assert "rollback_drill on cube" in rows and "kill_slot on active" in rows and "pending" in rows

        # approve the drill: confirmation page, then the experiment runs (pre-flight re-checked first)
        page.goto(f"{daemon.url}/console/approvals/{drill['approval']['id']}")
        assert "active-slot" not in page.inner_text("#ctx-preflight")
        assert page.inner_text("#ctx-revert_plan").strip() not in ("", "null")
        page.click("#approve")
        assert "Confirm: approve" in page.inner_text("h1")
        page.click("#confirm")
        page.wait_for_url(f"{daemon.url}/console/approvals/{drill['approval']['id']}")
        assert page.inner_text("#approval-status") == "executed", page.inner_text("#ctx-result")[:2000]
        result = json.loads(page.inner_text("#ctx-result"))
        assert result["outcome"] == "completed", json.dumps(result)[:2000]
        [inj] = [i for i in result["injections"] if i["kind"] == "rollback_drill"]
        assert inj["state"] == "reverted", inj
        decision = json.loads(page.inner_text("#ctx-decision"))
        assert decision["operator"] == "carol" and decision["via"] == "web"
        assert decision["signed_on_behalf_by"] == "cube" and decision["verified"]["operator"] == "carol"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "approval-executed.png"), full_page=True)
        exp = httpx.get(f"{daemon.url}/v1/chaos/experiments/{result['experiment_id']}", headers=admin,
                        timeout=30).json()
        assert exp["approval_id"] == drill["approval"]["id"] and exp["state"] == "completed"
        assert twin.cube.state().active == active_before  # the drill flipped and flipped back

        # deny the kill: nothing runs
        page.goto(f"{daemon.url}/console/approvals/{kill['approval']['id']}/confirm?decision=deny")
        page.fill("input[name=reason]", "not during business hours")
        page.click("#confirm")
        page.wait_for_url(f"{daemon.url}/console/approvals/{kill['approval']['id']}")
        assert page.inner_text("#approval-status") == "denied"
        assert json.loads(page.inner_text("#ctx-decision"))["reason"] == "not during business hours"
        assert "#approve" not in page.content() and page.locator("#approve").count() == 0
        ran = httpx.get(f"{daemon.url}/v1/chaos/experiments", headers=admin, timeout=30).json()["experiments"]
        assert [e["approval_id"] for e in ran] == [drill["approval"]["id"]]

        # a decided item cannot be decided again
        csrf = page.locator("input[name=csrf]").first.get_attribute("value")
        r = page.request.post(f"{daemon.url}/console/approvals/{kill['approval']['id']}/decide",
                              form={"csrf": csrf, "decision": "approve", "reason": "again"})
        assert r.status == 409 and "denied" in r.text()
