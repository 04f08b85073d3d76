"""The dashboard over a seeded fleet of 10,000 devices (no broker needed): the fleet page's
order, filters and paging, the demand page, accessibility on every page, and the fleet
page's load time (measured and printed, not asserted)."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, expect

from gridguard.platform.run import Running, run_platform
from gridguard.platform.security import Role
from gridguard.platform.settings import Settings
from gridguard.platform.telemetry import month_key
from gridguard.platform.users import create_user
from gridguard.platform.web.views import last_months
from tests.platform.web.conftest import log_in, new_page, screenshot, serious_violations
from tests.platform.web.rig import PASSWORD
from tests.platform.web.seed import FEATURED, ZONE, seed_fleet

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]
FLEET = 10_000


@dataclass
class Seeded:
    url: str
    running: Running


@pytest.fixture(scope="module")
def fleet_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One seeded SQLite file for the module (seeding 10,000 devices takes a few seconds)."""
    path = tmp_path_factory.mktemp("fleet") / "platform.db"
    url = f"sqlite:///{path}"

    async def build() -> None:
        from gridguard.platform.database import Database  # noqa: PLC0415

        db = Database(url)
        await db.open()
        try:
            await seed_fleet(db, count=FLEET, now=datetime.now(UTC))
            for name, role in (("olivia", Role.OPERATOR), ("victor", Role.VIEWER)):
                await create_user(
                    db, name=name, password=PASSWORD, role=role, now=datetime.now(UTC)
                )
        finally:
            await db.close()

    asyncio.run(build())
    return url


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def seeded(fleet_db: str) -> AsyncIterator[Seeded]:
    """A platform on the seeded database for the module's tests, which only read (each logs in
    on a browser context of its own); its broker subscription sees nothing of ours."""
    settings = Settings(db_url=fleet_db, port=0, prefixes=("gg-seeded-none/ems",))
    stop, running = asyncio.Event(), Running()
    task = asyncio.create_task(run_platform(settings, stop, running=running))
    await asyncio.wait_for(running.ready.wait(), 20)
    yield Seeded(running.url, running)
    stop.set()
    await asyncio.wait_for(task, 30)


async def timed_goto(page: Page, url: str) -> float:
    started = time.perf_counter()
    await page.goto(url, wait_until="load")
    return (time.perf_counter() - started) * 1000


async def test_fleet_page_with_ten_thousand_devices(
    seeded: Seeded, shared_browser: Browser
) -> None:
    """Open alarms first, 50 a page, search and the offline filter; load time printed."""
    page = await new_page(shared_browser)
    await log_in(page, seeded.url, "olivia")
    loads = [await timed_goto(page, f"{seeded.url}/fleet") for _ in range(5)]
    rows = page.locator("#fleet-table tbody tr")
    await expect(rows).to_have_count(50)
    await expect(page.locator("#fleet-table")).to_contain_text(f"of {FLEET}")
    first_alarms = await rows.nth(0).locator("td").nth(2).inner_text()
    assert first_alarms.strip() != "0", "devices with open alarms come first"
    await screenshot(page, "dashboard-fleet.png", full_page=False)
    started = time.perf_counter()
    await page.get_by_label("Search").fill("gg-fleet-04321")
    await expect(rows).to_have_count(1)
    search_ms = (time.perf_counter() - started) * 1000
    await page.get_by_label("Search").fill("")
    await page.get_by_label("Status").select_option("offline")
    await expect(page.locator("#fleet-table tbody tr .badge.off").first).to_be_visible()
    assert await page.locator("#fleet-table tbody tr .badge.ok").count() == 0
    await page.get_by_label("Status").select_option("")
    await expect(page.locator("#fleet-table")).to_contain_text(f"devices 1–50 of {FLEET}")
    await page.get_by_role("link", name="Next").click()
    await expect(page.locator("#fleet-table")).to_contain_text("devices 51–100")
    print(  # noqa: T201 - the measurement is the output
        f"\nfleet page, {FLEET} devices: load median {statistics.median(loads):.0f} ms "
        f"(min {min(loads):.0f}, max {max(loads):.0f}, 5 loads); search to 1 row {search_ms:.0f} ms"
    )


async def test_demand_page_shows_a_year_of_peaks(seeded: Seeded, shared_browser: Browser) -> None:
    page = await new_page(shared_browser)
    last_month = last_months(month_key(datetime.now(UTC), ZONE))[1]
    await log_in(page, seeded.url, "victor", next_path=f"/devices/{FEATURED}/demand")
    await page.goto(f"{seeded.url}/devices/{FEATURED}/demand?month={last_month}")
    table = page.locator("table.data").first
    await expect(table.locator("tbody tr")).to_have_count(12)
    await expect(table).to_contain_text("720.0")
    await expect(page.locator(".month-demand canvas")).to_be_visible(timeout=20_000)
    await screenshot(page, "dashboard-demand.png")


PAGES = (
    "/fleet",
    f"/devices/{FEATURED}",
    f"/devices/{FEATURED}/demand",
    f"/devices/{FEATURED}/strategies",
    f"/devices/{FEATURED}/strategies/1/edit",
    f"/devices/{FEATURED}/strategies/replace",
    "/commands",
    "/alarms",
)


async def test_no_serious_accessibility_violations(seeded: Seeded, shared_browser: Browser) -> None:
    """axe-core on every page, for an operator (all forms shown), in English and Chinese."""
    page = await new_page(shared_browser)
    await page.goto(f"{seeded.url}/login")
    found = {"/login": await serious_violations(page)}
    await log_in(page, seeded.url, "olivia")
    for language in ("en", "zh"):
        await page.goto(f"{seeded.url}/lang?set={language}&next=/fleet")
        for path in PAGES:
            await page.goto(f"{seeded.url}{path}", wait_until="load")
            await page.wait_for_load_state("networkidle")
            found[f"{language} {path}"] = await serious_violations(page)
            if (language, path) == ("zh", PAGES[3]):
                await screenshot(page, "dashboard-strategies-zh.png")
    assert {k: v for k, v in found.items() if v} == {}


async def test_tablet_width_keeps_everything_reachable(
    seeded: Seeded, shared_browser: Browser
) -> None:
    """At 768 px the page does not scroll sideways (tables scroll inside their box)."""
    page = await new_page(shared_browser, width=768, height=1024)
    await log_in(page, seeded.url, "olivia", next_path=f"/devices/{FEATURED}/strategies")
    overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    await page.keyboard.press("Tab")
    focused = await page.evaluate("document.activeElement.textContent")
    assert focused.strip() == "Skip to content"
