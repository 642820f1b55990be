"""Headless Debian Chromium driven by Playwright (never `playwright install`: downloads fail here)."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "console"


def need_chromium() -> None:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.fail("Debian's chromium is missing: run `make system-deps` (apt-get install -y chromium prometheus)")


@contextlib.contextmanager
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    need_chromium()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def login(page: Any, base: str, token: str) -> None:
    page.goto(f"{base}/console/")
    assert "/console/login" in page.url  # not logged in: sent to the login page
    page.fill("input[name=token]", token)
    page.click("button")
    page.wait_for_url(f"{base}/console/")


def axe_serious(page: Any) -> list[str]:
    """axe-core (bundled by axe-playwright-python, injected into the page): serious and critical violations."""
    from axe_playwright_python.sync_playwright import Axe

    res = Axe().run(page)
    return [f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}" for v in res.response["violations"]
            if v["impact"] in ("serious", "critical")]


def assert_accessible(page: Any, what: str) -> None:
    bad = axe_serious(page)
    assert not bad, f"{what}: axe reports {bad}"


def above_fold(page: Any, selector: str, fold: float = 800) -> None:
    """The element is laid out and its bottom edge is inside the first `fold` px of the page."""
    box = page.locator(selector).first.bounding_box()
    assert box is not None, f"{selector} is not laid out"
    assert box["y"] + box["height"] <= fold, f"{selector} ends at {box['y'] + box['height']:.0f} px (> {fold:.0f})"
