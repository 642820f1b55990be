"""The live Status page in real headless Chromium follows a real rollout on the twin (real daemon, real
router and slots, the rollout controller's own judge) from shadow to promotion, without a reload."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from samantha.core.operators import add_operator
from tests.console.browser import ARTIFACTS, assert_accessible, browser, login
from tests.rollout.kit import rollout_env, short_policy

# Records the phases the live fragment shows, in the page itself: a reload would wipe it.
OBSERVE = """() => { window.__phases = []; window.__stayed = true;
  const seen = () => { const el = document.querySelector('#rollout-phase');
    const p = el ? el.textContent : 'none'; if (window.__phases.at(-1) !== p) window.__phases.push(p); };
  seen(); new MutationObserver(seen).observe(document.querySelector('#live'), {childList: true, subtree: true}); }"""


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_status_page_follows_a_twin_rollout_from_shadow_to_promotion_without_reload(tmp_path: Path) -> None:
    with rollout_env(tmp_path, short_policy(shadow=True, step_s=3.0, soak_s=5.0), rps=150) as env, browser() as b:
        cfg = env.daemon.config
        token = add_operator(cfg.resolve(cfg.api.operators_file), "olga", "viewer")
        page = b.new_context(viewport={"width": 1280, "height": 900}).new_page()
        login(page, env.url, token)
        assert "No rollout in progress" in page.inner_text("#rollout")
        assert_accessible(page, "status page")
        page.evaluate(OBSERVE)

        env.twin.bundle("v2", seed=0, version="2")  # same weights, new release: it should promote
        r = env.post("/v1/rollout/start", json={"bundle": "v2", "request_id": "req-console-1"})
        assert r.status_code == 200, r.text
        shot = False
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            phase = page.inner_text("#rollout-phase") if page.locator("#rollout-phase").count() else "none"
            if not shot and phase == "step" and page.inner_text("#rollout-step").startswith(("2 ", "3 ")):
                assert page.locator("#rollout-gates li").count() >= 1
                assert "needed" in page.inner_text("#rollout-samples")
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / "status-mid-rollout.png"), full_page=True)
                shot = True
            if phase in ("promoted", "aborted", "failed"):
                break
            time.sleep(0.2)
        phases = page.evaluate("window.__phases")
        assert page.evaluate("window.__stayed === true"), "the page was reloaded"
        assert phases[-1] == "promoted", (phases, env.status()["rollout"]["reason"])
        for p in ("shadow", "step", "promoted"):
            assert p in phases, phases
        assert phases.index("shadow") < phases.index("step") < phases.index("promoted"), phases
        assert shot, f"no screenshot mid-rollout: phases seen {phases}"
        page.wait_for_function(  # the slots table follows the flip too: version 2 is now the active slot's
            "[...document.querySelectorAll('#slots tr')].some(r => r.cells[1] && r.cells[1].textContent === 'active'"
            " && r.cells[2].textContent.includes('@2'))", timeout=20_000)
        assert page.evaluate("window.__stayed === true")
        assert_accessible(page, "status page after promotion")
        # at 768 px (a tablet) the page fits: no sideways scroll of the page itself
        page.set_viewport_size({"width": 768, "height": 1024})
        assert page.evaluate("document.documentElement.scrollWidth") <= 768
