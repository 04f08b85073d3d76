"""Live updates: a browser on one instance sees reports another instance ingested, and a
stream resumed with Last-Event-ID delivers what changed while it was away."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiomqtt
import httpx
import pytest
from playwright.async_api import Browser

from gridguard.platform.security import Role
from gridguard.protocol.topics import TopicScheme, build_topic
from tests.platform.conftest import Platform, PlatformFactory, eventually
from tests.platform.web.conftest import log_in, new_page

pytestmark = pytest.mark.integration


def report(grid_kw: float) -> str:
    now = datetime.now(UTC)
    meter = {"meter_id": 9, "grid_power_kw": grid_kw, "demand_kw": 0.0, "failsafe": False}
    return json.dumps(
        {"at": now.isoformat(), "timestamp": int(now.timestamp() * 1000), "meters": [meter]}
    )


class Device:
    """A device that only reports status (enough for the platform to register it)."""

    def __init__(self, client: aiomqtt.Client, prefix: str, uid: str) -> None:
        self._client = client
        self.uid = uid
        self._topic = build_topic(TopicScheme("custom", prefix=prefix), uid, "status", "post")

    async def report(self, grid_kw: float) -> None:
        await self._client.publish(self._topic, report(grid_kw), qos=1)


@pytest.fixture
async def device(prefix: str) -> AsyncIterator[Device]:
    async with aiomqtt.Client("127.0.0.1", 1883) as client:
        yield Device(client, prefix, "gg-live-1")


async def stored_grid(platform: Platform, uid: str) -> float | None:
    response = await platform.admin.get(f"/api/devices/{uid}")
    if response.status_code != 200 or not response.json()["last_status"]:
        return None
    value: float = response.json()["last_status"]["meters"][0]["grid_power_kw"]
    return value


async def test_browser_on_another_instance_sees_live_reports(
    platform_factory: PlatformFactory, device: Device, browser: Browser
) -> None:
    """Instance A ingests (B subscribes to another prefix); the chart on B moves."""
    ingesting = await platform_factory()
    serving = await platform_factory(prefixes=("ggp-elsewhere/ems",))
    await serving.user("olivia", Role.OPERATOR)
    await device.report(1.0)
    await eventually(lambda: stored_grid(ingesting, device.uid), what="the first report")
    page = await new_page(browser)
    await log_in(page, serving.url, "olivia", next_path=f"/devices/{device.uid}")
    await page.wait_for_function("document.body.dataset.live === 'open'")
    for i in range(2, 6):
        await device.report(100.0 + i)
        await page.wait_for_function(f"document.body.dataset.liveGrid === '{100 + i}'")


async def events(
    client: httpx.AsyncClient, uid: str, last_id: str | None
) -> AsyncIterator[dict[str, Any]]:
    headers = {"Last-Event-ID": last_id} if last_id else {}
    async with client.stream("GET", f"/events?device={uid}", headers=headers) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        event: dict[str, Any] = {}
        async for line in response.aiter_lines():
            if not line:
                if "event" in event:
                    yield event
                event = {}
                continue
            key, _, value = line.partition(": ")
            event[key] = json.loads(value) if key == "data" else value


async def first_status(client: httpx.AsyncClient, uid: str, last_id: str | None) -> dict[str, Any]:
    async for event in events(client, uid, last_id):
        if event["event"] == "status":
            return event
    pytest.fail("the stream ended without a status event")


async def test_resumed_stream_delivers_what_changed_meanwhile(
    platform_factory: PlatformFactory, device: Device
) -> None:
    """Disconnected after report 1; report 2 arrives; resuming from the event id yields it."""
    platform = await platform_factory()
    token = await platform.user("olivia", Role.VIEWER)
    await device.report(1.0)
    await eventually(lambda: stored_grid(platform, device.uid), what="report 1")
    client = platform.client()
    client.cookies.set("gg_session", token)
    first = await first_status(client, device.uid, "0.0.0.0")
    assert first["data"]["meters"]["9"]["grid"] == 1.0
    await device.report(2.0)

    async def second_stored() -> bool:
        return await stored_grid(platform, device.uid) == 2.0

    await eventually(second_stored, what="report 2")
    resumed = await first_status(client, device.uid, first["id"])
    assert resumed["data"]["meters"]["9"]["grid"] == 2.0
    assert resumed["id"] != first["id"]
