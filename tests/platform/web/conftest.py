"""Browser fixtures: Debian's chromium driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright

from tests.platform.conftest import missing_service
from tests.platform.web.rig import PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
AXE = Path(__file__).with_name("vendor") / "axe-4.10.3.min.js"
SCREENSHOTS = os.environ.get("GRIDGUARD_SCREENSHOTS")
"""A folder (e.g. ``docs``) to write the dashboard's screenshots to; unset: none are kept."""


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        missing_service("no /usr/bin/chromium (apt-get install chromium)")
    async with async_playwright() as driver:
        launched = await driver.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """A chromium of the test's own."""
    async with chromium() as launched:
        yield launched


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def module_chromium() -> AsyncIterator[Browser]:
    async with chromium() as launched:
        yield launched


@pytest_asyncio.fixture(loop_scope="module")
async def shared_browser(module_chromium: Browser) -> AsyncIterator[Browser]:
    """The module's chromium, for a module whose tests run on its loop
    (``pytest.mark.asyncio(loop_scope="module")``): starting Playwright and a chromium for
    every test cost 1.5-2 s each. What a test opened (contexts: cookies, pages, their live
    streams) is closed after it, so each test still starts from a browser without state."""
    yield module_chromium
    for context in module_chromium.contexts:
        await context.close()


async def new_page(browser: Browser, *, width: int = 1280, height: int = 900) -> Page:
    context = await browser.new_context(viewport={"width": width, "height": height})
    page = await context.new_page()
    page.set_default_timeout(15_000)
    return page


async def log_in(page: Page, base_url: str, name: str, *, next_path: str = "/fleet") -> None:
    await page.goto(f"{base_url}/login?next={next_path}")
    await page.get_by_label("User name").fill(name)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await page.wait_for_url(f"**{next_path}*")


async def serious_violations(page: Page) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now."""
    await page.add_script_tag(path=str(AXE))
    result = await page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in {"serious", "critical"}
    ]


async def screenshot(page: Page, name: str, *, full_page: bool = True) -> None:
    if SCREENSHOTS:
        await page.screenshot(path=str(Path(SCREENSHOTS) / name), full_page=full_page)
