"""No answer: retried under the same mid, then 504 naming it; a late answer is still recorded."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from gridguard.protocol import codec
from gridguard.protocol.models import CreateCommand, CreateResult, IdData, message_type
from gridguard.protocol.timefmt import now_ms
from gridguard.protocol.topics import TopicScheme, build_topic
from gridguard.testing.examples import CREATE_DATA
from gridguard.testing.mosquitto import MosquittoProcess
from tests.platform.conftest import (
    AgentFactory,
    PlatformFactory,
    device_seen,
    eventually,
)

pytestmark = pytest.mark.integration


async def _command(platform: Any, mid: str, state: str) -> dict[str, Any] | None:
    body = (await platform.admin.get(f"/api/commands/{mid}")).json()
    return body if body["state"] == state else None


async def test_silent_device_504_then_late_result(
    platform_factory: PlatformFactory, prefix: str
) -> None:
    """Two sends under one mid, a 504 naming it; the answer that comes later is recorded."""
    platform = await platform_factory(command_timeout_s=0.3, command_retries=1)
    uid = f"gg-silent-{uuid.uuid4().hex[:8]}"
    scheme = TopicScheme("custom", prefix=prefix)
    registered = await platform.admin.post(
        "/api/devices", json={"uid": uid, "scheme": "custom", "prefix": prefix}
    )
    assert registered.status_code == 201, registered.text
    async with aiomqtt.Client("127.0.0.1", 1883) as device:
        await device.subscribe(build_topic(scheme, uid, "create", "command"), qos=1)
        response = await platform.admin.post(f"/api/devices/{uid}/strategies", json=CREATE_DATA)
        assert response.status_code == 504
        mid = response.json()["mid"]
        received = []
        async with asyncio.timeout(5):
            async for message in device.messages:
                assert isinstance(message.payload, bytes)
                received.append(codec.parse_model(CreateCommand, message.payload))
                if len(received) == 2:
                    break
        assert [c.mid for c in received] == [mid, mid]
        assert received[0].data.ele_meter_id == CREATE_DATA["ele_meter_id"]
        timed_out = await _command(platform, mid, "timed_out")
        assert timed_out is not None
        assert timed_out["retries"] == 1
        late = CreateResult(
            mid=str(uuid.uuid4()),
            type=message_type("create"),
            device_uid=uid,
            timestamp=now_ms(),
            reply=mid,
            data=IdData(id=41),
        )
        await device.publish(build_topic(scheme, uid, "create", "result"), codec.encode(late), 1)
    recorded = await eventually(
        lambda: _command(platform, mid, "succeeded"), what="the late result"
    )
    assert (recorded["late"], recorded["code"], recorded["data"]) == (True, 200, {"id": 41})


async def test_retry_under_same_mid_is_applied_once(
    platform_factory: PlatformFactory, agent_factory: AgentFactory
) -> None:
    """The agent is down: both sends wait in its session; on restart it applies the mid once."""
    platform = await platform_factory(command_timeout_s=0.3, command_retries=1)
    agent = await agent_factory()
    await device_seen(platform, agent.uid)
    await agent.stop()
    response = await platform.admin.post(f"/api/devices/{agent.uid}/strategies", json=CREATE_DATA)
    assert response.status_code == 504
    mid = response.json()["mid"]
    await agent_factory(agent.site)
    recorded = await eventually(
        lambda: _command(platform, mid, "succeeded"), what="the result after the restart"
    )
    assert recorded["late"] is True

    async def one_strategy() -> list[Any] | None:
        body = (await platform.admin.get(f"/api/devices/{agent.uid}/strategies")).json()
        return body or None

    reported = await eventually(one_strategy, what="list/post after the restart")
    assert [s["id"] for s in reported] == [recorded["data"]["id"]]


async def test_broker_away_is_503_and_the_command_failed(
    platform_factory: PlatformFactory, prefix: str, tmp_path: Path
) -> None:
    """The platform's broker stops: a mutation is a 503 naming its mid, audited as failed."""
    broker = MosquittoProcess(tmp_path / "broker")
    broker.start()
    try:
        platform = await platform_factory(mqtt_url=broker.url)
        await platform.admin.post(
            "/api/devices", json={"uid": "gg-away", "scheme": "custom", "prefix": prefix}
        )
        broker.stop()
        response = await eventually(
            lambda: _refused(platform), what="a 503 once the broker is gone"
        )
        body = response.json()
        assert body["detail"].startswith("broker unavailable")
        command = (await platform.admin.get(f"/api/commands/{body['mid']}")).json()
        assert command["state"] == "failed"
    finally:
        broker.remove()


async def _refused(platform: Any) -> Any:
    response = await platform.admin.post("/api/devices/gg-away/strategies", json=CREATE_DATA)
    return response if response.status_code == 503 else None
