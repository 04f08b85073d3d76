"""Alarms end to end: backflow held for N s (webhook on start and end), acknowledge, command
timeouts, and silent devices."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiomqtt
import pytest

from gridguard.protocol.topics import TopicScheme, build_topic
from gridguard.testing.examples import CREATE_DATA
from tests.platform.conftest import Platform, PlatformFactory, eventually

pytestmark = pytest.mark.integration
T0 = datetime(2026, 6, 10, 0, 0, tzinfo=UTC)


class Receiver:
    """A webhook receiver on 127.0.0.1: records each POSTed JSON body."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.url = ""

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
        self.events.append(json.loads(await reader.readexactly(length)))
        writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    hook = Receiver()
    server = await asyncio.start_server(hook._serve, "127.0.0.1", 0)
    hook.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hook"
    async with server:
        yield hook


def status(second: int, grid_kw: float) -> str:
    meter = {"meter_id": 9, "grid_power_kw": grid_kw, "demand_kw": 0.0, "failsafe": False}
    at = (T0 + timedelta(seconds=second)).isoformat()
    return json.dumps({"at": at, "failsafe": False, "meters": [meter]})


async def _alarms(platform: Platform, **params: Any) -> list[dict[str, Any]]:
    return list((await platform.admin.get("/api/alarms", params=params)).json()["items"])


async def test_backflow_held_30_s_starts_then_ends_with_webhooks(
    platform: Platform, prefix: str, receiver: Receiver
) -> None:
    uid, scheme = "gg-flow", TopicScheme("custom", prefix=prefix)
    rule = await platform.admin.post(
        "/api/alarm-rules",
        json={
            "kind": "backflow",
            "duration_s": 30,
            "severity": "critical",
            "webhook_url": receiver.url,
        },
    )
    assert rule.status_code == 201, rule.text
    strategy = {
        **CREATE_DATA,
        "id": 1,
        "created_at": "2026-06-01T00:00:00Z",
        "updated_at": "2026-06-01T00:00:00Z",
    }
    list_post = {
        "mid": "0f7c1f4e-2c6b-4a8e-9d6e-3b1d2f0a9c11",
        "type": "streaming_overdemand_list",
        "device_uid": uid,
        "timestamp": 1,
        "data": [strategy],
    }
    topic = build_topic(scheme, uid, "status", "post")
    async with aiomqtt.Client("127.0.0.1", 1883) as device:
        await device.publish(build_topic(scheme, uid, "list", "post"), json.dumps(list_post), 1)
        await eventually(lambda: _has_list(platform, uid), what="the list/post")
        for second in (0, 10, 20):  # below the 10 kW baseline, but not yet for 30 s
            await device.publish(topic, status(second, 4.0), 1)
        await eventually(lambda: _samples(platform, uid, 3), what="three samples")
        assert await _alarms(platform) == []
        await device.publish(topic, status(30, 4.0), 1)
        (started,) = await eventually(lambda: _alarms(platform, active=True), what="the alarm")
        assert (started["kind"], started["severity"], started["subject"]) == (
            "backflow",
            "critical",
            "meter 9",
        )
        await device.publish(topic, status(40, 25.0), 1)
        (ended,) = await eventually(lambda: _alarms(platform, active=False), what="its end")
    assert ended["ended_at"] is not None
    await eventually(lambda: _count(receiver.events, 2), what="both webhook events")
    assert [e["event"] for e in receiver.events] == ["alarm.started", "alarm.ended"]
    acked = await platform.admin.post(f"/api/alarms/{ended['id']}/ack")
    assert acked.json()["acknowledged_by"] == "admin-0"


async def _count(items: list[Any], n: int) -> bool:
    return len(items) >= n


async def _has_list(platform: Platform, uid: str) -> bool:
    response = await platform.admin.get(f"/api/devices/{uid}")
    return response.status_code == 200 and response.json()["strategy_count"] == 1


async def _samples(platform: Platform, uid: str, n: int) -> bool:
    params: dict[str, str | int] = {
        "meter": 9,
        "from": T0.isoformat(),
        "to": (T0 + timedelta(hours=1)).isoformat(),
    }
    body = (await platform.admin.get(f"/api/devices/{uid}/telemetry", params=params)).json()
    return sum(int(p["samples"]) for p in body["points"]) >= n


async def test_timeout_and_silence_raise_alarms(
    platform_factory: PlatformFactory, prefix: str
) -> None:
    platform = await platform_factory(command_timeout_s=0.2, command_retries=0, sweep_period_s=0.2)
    for kind in ("command_timed_out", "device_offline"):
        made = await platform.admin.post("/api/alarm-rules", json={"kind": kind})
        assert made.status_code == 201
    await platform.admin.post(
        "/api/devices", json={"uid": "gg-mute", "scheme": "custom", "prefix": prefix}
    )
    response = await platform.admin.post("/api/devices/gg-mute/strategies", json=CREATE_DATA)
    assert response.status_code == 504
    mid = response.json()["mid"]
    timed_out = await eventually(
        lambda: _alarms(platform, kind="command_timed_out"), what="the timeout alarm"
    )
    assert [a["subject"] for a in timed_out] == [f"command {mid}"]
    offline = await eventually(
        lambda: _alarms(platform, kind="device_offline", active=True), what="the offline alarm"
    )
    assert [a["device_uid"] for a in offline] == ["gg-mute"]
