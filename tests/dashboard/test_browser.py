"""The dashboard in a real headless Chromium, against the demo's world behind ``stanch serve``'s
app on loopback.

A responder opens the overview, follows the checkout incident, approves the pending breaker
and sees it applied without a reload; a viewer's page of the same incident has no buttons and
follows the change by itself within two seconds; markup typed into a comment or sent in a
user report shows as text. Screenshots of the overview and the incident page go to
``docs/screenshots/`` (the README shows them).

Chromium is Debian's (``scripts/ensure-browser.sh`` installs it when missing), driven by
Playwright through ``executable_path``; Playwright's own browser download is never used.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from stanch.server.auth import Role

from .conftest import XSS
from .world import DemoServer, demo_server

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = os.environ.get("STANCH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
VIEWPORT = {"width": 1440, "height": 900}
UPDATE_WITHIN_MS = 2000  # the bound for a change to show on an open page


def chromium() -> str:
    """The browser's path, installing Debian's package first if it is missing."""
    if not os.access(CHROMIUM, os.X_OK):
        script = ROOT / "scripts" / "ensure-browser.sh"
        subprocess.run(["bash", str(script)], check=False, timeout=900)
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(
            f"no Chromium at {CHROMIUM}, and scripts/ensure-browser.sh could not install it"
        )
    return CHROMIUM


class Served:
    """The demo server on its own event loop thread (the engine lives there), on a free port."""

    def __init__(self, db_url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.demo: DemoServer = self.call(demo_server(db_url), timeout=120)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        config = uvicorn.Config(
            self.demo.app, log_level="warning", access_log=False, lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.serving: Future[None] = asyncio.run_coroutine_threadsafe(
            self.server.serve(sockets=[sock]), self.loop
        )
        deadline = time.monotonic() + 30
        while not self.server.started:
            if self.serving.done() or time.monotonic() > deadline:
                raise RuntimeError("the dashboard did not start")
            time.sleep(0.05)

    def call(self, coroutine: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def advance(self, seconds: float) -> None:
        """Let the demo world run on (traffic, engine steps) by ``seconds`` simulated."""
        world = self.demo.world
        self.call(world.run(world.clock.now() + seconds), timeout=120)

    def close(self) -> None:
        self.server.should_exit = True
        self.serving.result(30)

        async def close_demo() -> None:
            self.demo.close()

        self.call(close_demo())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    chromium()
    db = tmp_path_factory.mktemp("dashboard") / "demo.db"
    server = Served(f"sqlite:///{db}")
    yield server
    server.close()


@pytest.fixture(scope="module")
def browser(served: Served) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def open_page(browser: Any, served: Served, role: Role, problems: list[str]) -> Any:
    """A new browser session signed in as ``role`` (by keyboard: type the token, press Enter);
    console errors and page errors are collected in ``problems``."""
    context = browser.new_context(viewport=VIEWPORT, color_scheme="light")
    page = context.new_page()
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(served.url + "/")
    assert page.url.startswith(served.url + "/login")
    page.get_by_label("API token").fill(served.demo.tokens[role])
    page.keyboard.press("Enter")
    page.wait_for_url(served.url + "/")
    return page


def wait_for_charts(page: Any, selector: str) -> None:
    # a locator, not wait_for_function: polling a string predicate needs eval, which the
    # page's Content-Security-Policy refuses (as it should)
    page.locator(f"{selector} canvas").first.wait_for()
    page.wait_for_timeout(300)  # let every chart of the page draw


def screenshot_ready(page: Any) -> None:
    """Top of the page, no hover, no focus ring: what a person sees on arrival."""
    page.evaluate("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0)")
    page.mouse.move(0, 0)
    page.wait_for_timeout(200)


def test_a_responder_follows_the_checkout_incident_and_approves(
    served: Served, browser: Any
) -> None:
    """The whole story in a browser; see the module docstring."""
    from playwright.sync_api import expect

    problems: list[str] = []
    page = open_page(browser, served, Role.RESPONDER, problems)

    # The overview: health, open incidents, approvals. The skip link comes first for keyboards.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    expect(page.locator("#open-incidents")).to_contain_text("Error burst on POST /checkout")
    expect(page.locator("#pending-actions")).to_contain_text("circuit_break")
    expect(page.locator("tr.row-failing", has_text="POST /checkout")).to_have_count(1)
    wait_for_charts(page, "#services")
    screenshot_ready(page)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "overview.png"), full_page=True, caret="initial")

    # Follow the checkout incident.
    page.locator("#open-incidents tr", has_text="POST /checkout").get_by_role("link").click()
    expect(page.locator("h1")).to_contain_text("Error burst on POST /checkout")
    incident_url = page.url
    wait_for_charts(page, "#charts")
    page.evaluate("window.__notReloaded = true")

    # A viewer has the same page open: no buttons at all, only the sign-out.
    viewer = open_page(browser, served, Role.VIEWER, problems)
    viewer.goto(incident_url)
    for name in ("Approve", "Reject", "Revert", "Acknowledge", "Resolve", "Add comment"):
        expect(viewer.get_by_role("button", name=name)).to_have_count(0)
    expect(viewer.locator("form[method=post]")).to_have_count(1)
    viewer.evaluate("window.__notReloaded = true")
    breaker = "li.action:has-text('circuit_break')"
    expect(viewer.locator(breaker)).to_contain_text("pending")

    # The responder approves the breaker: applied on the page, no reload.
    page.locator(breaker).get_by_role("button", name="Approve").click()
    expect(page.locator(f"{breaker} .state")).to_have_text("applied", timeout=UPDATE_WITHIN_MS)
    expect(page.locator("#status")).to_contain_text("is now applied")
    expect(page.locator(breaker).get_by_role("button", name="Revert")).to_be_visible()
    assert page.evaluate("window.__notReloaded") is True

    # ... and the viewer's page follows within two seconds, by itself.
    expect(viewer.locator(f"{breaker} .state")).to_have_text("applied", timeout=UPDATE_WITHIN_MS)
    assert viewer.evaluate("window.__notReloaded") is True

    # Markup in a comment and in a user report is shown as text, never run.
    comment = page.get_by_role("textbox", name="Comment")
    comment.fill(f"{XSS}<img src=x onerror=window.__xss=2> checking the payment provider")
    page.get_by_role("button", name="Add comment").click()
    expect(page.locator("#timeline")).to_contain_text(XSS, timeout=UPDATE_WITHIN_MS)
    viewer.goto(served.url + "/")
    viewer.evaluate("window.__notReloaded = true")
    hostile_route = f"POST /checkout{XSS}"
    report = httpx.post(
        served.url + "/api/v1/reports",
        json={"service": "shop", "route": hostile_route, "text": f"{XSS} card declined"},
        headers={"Authorization": f"Bearer {served.demo.tokens[Role.RESPONDER]}"},
        timeout=10,
    )
    assert report.status_code == 202, report.text
    reported = report.json()["incident"]
    # the report opens an incident of its own: the viewer's overview shows it by itself
    expect(viewer.locator("#open-incidents")).to_contain_text(
        hostile_route, timeout=UPDATE_WITHIN_MS
    )
    assert viewer.evaluate("window.__notReloaded") is True
    viewer.goto(f"{served.url}/incidents/{reported}")
    expect(viewer.locator("#timeline")).to_contain_text(f"{XSS} card declined")
    for p in (page, viewer):
        assert p.evaluate("window.__xss") is None
        assert p.locator("#timeline script, #timeline img, #open-incidents script").count() == 0

    # Keyboard only: focus the rollback's Approve and press Enter.
    rollback = "li.action:has-text('rollback_config')"
    page.locator(rollback).get_by_role("button", name="Approve").focus()
    page.keyboard.press("Enter")
    expect(page.locator(f"{rollback} .state")).to_have_text("applied", timeout=UPDATE_WITHIN_MS)

    # Let the world run on two minutes: the rollback heals checkout while the breaker holds.
    served.advance(120)
    expect(page.locator("#timeline")).to_contain_text("back to normal", timeout=3000)
    page.wait_for_timeout(1500)  # one more poll: the charts take the new points
    screenshot_ready(page)
    page.screenshot(path=str(SCREENSHOTS / "incident.png"), full_page=True, caret="initial")
    dark = browser.new_context(viewport=VIEWPORT, color_scheme="dark")
    dark.add_cookies(page.context.cookies())
    night = dark.new_page()
    night.goto(incident_url)
    wait_for_charts(night, "#charts")
    screenshot_ready(night)
    night.screenshot(path=str(SCREENSHOTS / "incident-dark.png"), caret="initial")
    assert problems == [], problems  # no CSP violation, no script error, anywhere
    for name in ("overview.png", "incident.png", "incident-dark.png"):
        assert (SCREENSHOTS / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
