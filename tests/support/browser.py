"""Debian's Chromium driven by Playwright, as every browser test launches it (never `playwright install`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from playwright.sync_api import sync_playwright

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


@contextmanager
def browser_page(**context_options: Any) -> Iterator[Any]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900}, **context_options)
        try:
            yield context.new_page()
        finally:
            context.close()
            browser.close()


def log_in(page: Any, url: str, token: str) -> None:
    """Through the dashboard's login form, landing on the deployment list."""
    page.goto(f"{url}/login")
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/deployments")
