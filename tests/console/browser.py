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
