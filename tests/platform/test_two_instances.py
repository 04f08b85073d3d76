"""Two platform instances on one database and broker: results recorded once, telemetry shared,
orphaned commands picked up by the sweeper."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aiomqtt
import pytest
import sqlalchemy as sa

from gridguard.platform.database import Database
from gridguard.platform.schema import commands, telemetry_samples
from gridguard.protocol.topics import TopicScheme, build_topic
from gridguard.testing.examples import CREATE_DATA
from tests.platform.conftest import AgentFactory, PlatformFactory, device_seen, eventually

pytestmark = pytest.mark.integration


async def test_result_is_recorded_once_and_answered_by_the_sender(
    platform_factory: PlatformFactory, agent_factory: AgentFactory
) -> None:
    first, second = await platform_factory(), await platform_factory()
    agent = await agent_factory()
    await device_seen(first, agent.uid)
    created = await second.admin.post(f"/api/devices/{agent.uid}/strategies", json=CREATE_DATA)
    assert created.status_code == 201, created.text
    mid = created.json()["mid"]
    seen_by_first = (await first.admin.get(f"/api/commands/{mid}")).json()
    assert (seen_by_first["state"], seen_by_first["user_name"]) == ("succeeded", "admin-1")
    audit = (await first.admin.get("/api/commands", params={"device": agent.uid})).json()
    assert audit["total"] == 1

    async def desired() -> dict[str, Any] | None:
        device = (await first.admin.get(f"/api/devices/{agent.uid}")).json()
        drift = device["drift"]
        return device if drift is not None and not drift["in_drift"] else None

    device = await eventually(desired, what="the desired set in step")
    assert device["strategy_count"] == 1


async def test_status_reports_are_shared_not_doubled(
    platform_factory: PlatformFactory, prefix: str, db_url: str
) -> None:
    """Each of 40 reports is written by exactly one of the two instances."""
    instances = [await platform_factory(), await platform_factory()]
    scheme, uid = TopicScheme("custom", prefix=prefix), "gg-shared"
    t0 = datetime(2026, 6, 10, tzinfo=UTC)
    async with aiomqtt.Client("127.0.0.1", 1883) as device:
        for i in range(40):
            meter = {"meter_id": 9, "grid_power_kw": float(i), "demand_kw": 0.0}
            doc = {"at": (t0 + timedelta(seconds=i)).isoformat(), "meters": [meter]}
            await device.publish(build_topic(scheme, uid, "status", "post"), json.dumps(doc), 1)
    db = Database(db_url)
    await db.open()
    try:

        async def written() -> int:
            async with db.read() as conn:
                count = await conn.scalar(sa.select(sa.func.count()).select_from(telemetry_samples))
            return count if count and count >= 40 else 0

        await eventually(written, what="40 samples")
        for platform in instances:  # a stopped instance has flushed all it buffered
            await platform.stop()
        async with db.read() as conn:
            assert (
                await conn.scalar(sa.select(sa.func.count()).select_from(telemetry_samples)) == 40
            )
    finally:
        await db.close()


async def test_sweeper_resends_a_command_whose_sender_died(
    platform_factory: PlatformFactory, agent_factory: AgentFactory, db_url: str
) -> None:
    """A pending row nobody waits for is re-sent under its mid, answered, applied once."""
    first = await platform_factory(command_timeout_s=0.3, sweep_period_s=0.2)
    await platform_factory(command_timeout_s=0.3, sweep_period_s=0.2)
    agent = await agent_factory()
    await device_seen(first, agent.uid)
    mid, long_ago = str(uuid.uuid4()), datetime.now(UTC) - timedelta(minutes=5)
    db = Database(db_url)
    await db.open()
    try:
        async with db.write() as conn:
            await conn.execute(
                sa.insert(commands).values(
                    mid=mid,
                    device_uid=agent.uid,
                    op="create",
                    request=CREATE_DATA,
                    user_name="ghost",
                    state="pending",
                    sent_at=long_ago,
                    last_sent_at=long_ago,
                )
            )
    finally:
        await db.close()

    async def answered() -> dict[str, Any] | None:
        body = (await first.admin.get(f"/api/commands/{mid}")).json()
        return body if body["state"] == "succeeded" else None

    command = await eventually(answered, what="the orphan answered")
    assert command["retries"] == 1

    async def one_strategy() -> list[Any] | None:
        body = (await first.admin.get(f"/api/devices/{agent.uid}/strategies")).json()
        return body or None

    assert len(await eventually(one_strategy, what="the list/post")) == 1
