"""The dashboard in a real browser (Debian's Chromium, headless) against the whole stack: log in,
deploy through the deploy page, watch it reach running without reloading, see a printed line arrive
live, find an XSS line inert, press Stop and see `stopped`. With DEPLOYER_SCREENSHOTS=1 the README's
screenshots are taken again into docs/screenshots/ (an ordinary run writes nothing there)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from deployer.store import tokens
from tests.integration.conftest import Stack
from tests.integration.screens import shoot
from tests.integration.test_lifecycle import SERVER, agent_bundle
from tests.support.browser import browser_page
from tests.support.zips import KEYPAIR

XSS = "<script>window.__xss = 1</script><img src=x onerror=window.__xss=2>"
PRINTER = f"""
import sys, threading, time
def talk():
    print({XSS!r}, flush=True)
    n = 0
    while True:
        n += 1
        print(f"tick {{n}}", flush=True)
        time.sleep(1)
threading.Thread(target=talk, daemon=True).start()
""" + SERVER


@pytest.fixture
def page(stack: Stack) -> Iterator[Any]:
    with browser_page() as page:
        yield page


def test_a_user_deploys_watches_and_stops_a_sample_in_the_browser(stack: Stack, page: Any, tmp_path: Path) -> None:
    base = stack.api.url
    token = tokens.create_token(stack.engine, "browser")[1]
    bundle, keypair = tmp_path / "project.zip", tmp_path / "keypair.json"
    bundle.write_bytes(agent_bundle(PRINTER, name="browser agent"))
    keypair.write_bytes(KEYPAIR)

    page.goto(f"{base}/deployments")
    expect(page).to_have_url(f"{base}/login?next=/deployments")
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")
    expect(page.locator("h2", has_text="Capacity")).to_be_visible()

    page.click("header nav a.primary")
    page.set_input_files("#zip", str(bundle))
    page.set_input_files("#keypair", str(keypair))
    page.fill("#env", "GREETING=hello")
    shoot(page, "deploy")
    page.click("#deploy-button")

    page.wait_for_url("**/d/*", timeout=30_000)
    status = page.locator("#status")
    expect(status).to_have_text("running", timeout=180_000)  # no reload: the stream moved it
    log = page.locator("#log")
    expect(log.locator(".line.stdout", has_text="tick 2")).to_be_visible(timeout=30_000)  # printed live
    expect(log.locator(".line.stdout", has_text="<script>window.__xss = 1</script>")).to_have_count(1)
    assert page.evaluate("window.__xss") is None  # shown as text, never run
    assert log.locator("script, img").count() == 0
    expect(page.locator("#timeline li")).to_have_count(9)  # queued … running
    shoot(page, "detail")

    page.click("#stop")
    expect(status).to_have_text("stopped", timeout=60_000)
    page.goto(f"{base}/deployments")
    expect(page.locator("tr", has_text="browser agent").locator(".badge")).to_have_text("stopped")
    shoot(page, "list")


def test_a_form_posted_without_the_csrf_token_is_refused_in_the_browser(stack: Stack, page: Any) -> None:
    base = stack.api.url
    token = tokens.create_token(stack.engine, "browser-csrf")[1]
    page.goto(f"{base}/login")
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/deployments")
    page.evaluate("document.querySelector('form[action=\"/logout\"] input[name=csrf_token]').remove()")
    page.click("text=Log out")
    expect(page.locator("h1")).to_have_text("Csrf")
    expect(page.locator("main")).to_contain_text("CSRF token")
