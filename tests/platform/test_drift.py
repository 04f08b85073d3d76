"""Desired vs reported: a change made behind the platform's back is drift; reconcile undoes it."""

from __future__ import annotations

from typing import Any

import pytest

from gridguard.client import StrategyClient
from gridguard.protocol.topics import TopicScheme
from gridguard.testing.examples import CREATE_DATA
from tests.platform.conftest import (
    BROKER,
    Agent,
    AgentFactory,
    Platform,
    device_seen,
    eventually,
)

pytestmark = pytest.mark.integration


def sdk(agent: Agent, prefix: str) -> StrategyClient:
    return StrategyClient(BROKER, TopicScheme("custom", prefix=prefix), agent.uid)


async def _drift(platform: Platform, uid: str, in_drift: bool) -> dict[str, Any] | None:
    device = (await platform.admin.get(f"/api/devices/{uid}")).json()
    drift = device["drift"]
    return device if drift is not None and drift["in_drift"] == in_drift else None


async def test_changed_field_is_drift_and_reconcile_restores(
    platform: Platform, agent_factory: AgentFactory, prefix: str
) -> None:
    agent = await agent_factory()
    await device_seen(platform, agent.uid)
    base = f"/api/devices/{agent.uid}"
    created = await platform.admin.post(f"{base}/strategies", json=CREATE_DATA)
    strategy_id = created.json()["data"]["id"]
    in_step = await eventually(lambda: _drift(platform, agent.uid, in_drift=False))
    assert in_step["desired_by"] == "admin-0"
    async with sdk(agent, prefix) as ems:
        assert (await ems.update({"id": strategy_id, "streaming_condition": 99})).code == 200
    drifted = await eventually(lambda: _drift(platform, agent.uid, in_drift=True), what="drift")
    assert drifted["drift"]["changed"] == {str(strategy_id): ["streaming_condition"]}
    listed = await platform.admin.get("/api/devices", params={"drift": True})
    assert [d["uid"] for d in listed.json()["items"]] == [agent.uid]

    reconciled = await platform.admin.post(f"{base}/reconcile")
    assert reconciled.status_code == 200, reconciled.text
    await eventually(lambda: _drift(platform, agent.uid, in_drift=False), what="reconciled")
    reported = (await platform.admin.get(f"{base}/strategies")).json()
    assert [(s["id"], s["streaming_condition"]) for s in reported] == [(strategy_id, 10)]


async def test_deleted_on_ems_is_created_again(
    platform: Platform, agent_factory: AgentFactory, prefix: str
) -> None:
    agent = await agent_factory()
    await device_seen(platform, agent.uid)
    base = f"/api/devices/{agent.uid}"
    created = await platform.admin.post(f"{base}/strategies", json=CREATE_DATA)
    strategy_id = created.json()["data"]["id"]
    await eventually(lambda: _drift(platform, agent.uid, in_drift=False))
    async with sdk(agent, prefix) as ems:
        assert (await ems.delete(strategy_id)).code == 200
    drifted = await eventually(lambda: _drift(platform, agent.uid, in_drift=True), what="drift")
    assert drifted["drift"]["missing"] == [strategy_id]
    assert (await platform.admin.post(f"{base}/reconcile")).status_code == 200
    restored = await eventually(lambda: _drift(platform, agent.uid, in_drift=False))
    assert [s["ele_meter_id"] for s in restored["reported"]] == [CREATE_DATA["ele_meter_id"]]


async def test_reconcile_without_desired_set_is_409(
    platform: Platform, agent_factory: AgentFactory
) -> None:
    agent = await agent_factory()
    await device_seen(platform, agent.uid)
    response = await platform.admin.post(f"/api/devices/{agent.uid}/reconcile")
    assert response.status_code == 409
    assert "no desired set" in response.json()["detail"]
