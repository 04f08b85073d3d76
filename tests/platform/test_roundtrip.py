"""Every REST strategy op end to end against the real edge agent on Mosquitto."""

from __future__ import annotations

from typing import Any

import pytest

from gridguard.testing.examples import CREATE_DATA
from tests.platform.conftest import AgentFactory, Platform, device_seen, eventually

pytestmark = pytest.mark.integration


async def test_every_op_end_to_end(platform: Platform, agent_factory: AgentFactory) -> None:
    """create, update, sync, replace-all, delete: each one command, each answered 200, audited."""
    agent = await agent_factory()
    device = await device_seen(platform, agent.uid)
    assert device["scheme"] == "custom"
    assert device["online"] is True
    api, base = platform.admin, f"/api/devices/{agent.uid}"

    created = await api.post(f"{base}/strategies", json=CREATE_DATA)
    assert created.status_code == 201, created.text
    strategy_id = created.json()["data"]["id"]
    updated = await api.patch(f"{base}/strategies/{strategy_id}", json={"streaming_condition": 20})
    assert updated.status_code == 200, updated.text
    synced = await api.post(f"{base}/sync")
    assert [(s["id"], s["streaming_condition"]) for s in synced.json()["data"]] == [
        (strategy_id, 20)
    ]
    batch = await api.put(f"{base}/strategies", json=[{**CREATE_DATA, "device_type": 3}])
    assert batch.status_code == 200, batch.text
    assert batch.json()["data"] == [{"id": strategy_id + 1}]
    deleted = await api.delete(f"{base}/strategies/{strategy_id}")
    assert deleted.status_code == 200, deleted.text

    async def reported() -> list[Any] | None:
        body = (await api.get(f"{base}/strategies")).json()
        return body if [s["device_type"] for s in body] == [3] else None

    await eventually(reported, what="list/post after the delete")
    audit = (await api.get("/api/commands", params={"device": agent.uid})).json()
    assert audit["total"] == 5
    assert {c["op"] for c in audit["items"]} == {"create", "update", "sync", "update_all", "delete"}
    assert {(c["state"], c["code"], c["user_name"]) for c in audit["items"]} == {
        ("succeeded", 200, "admin-0")
    }


async def test_ems_400_is_422_with_its_msg(platform: Platform, agent_factory: AgentFactory) -> None:
    """A meter the EMS does not know: it answers 400; the API says 422 with that msg verbatim."""
    agent = await agent_factory()
    await device_seen(platform, agent.uid)
    response = await platform.admin.post(
        f"/api/devices/{agent.uid}/strategies", json={**CREATE_DATA, "ele_meter_id": 77}
    )
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == 400
    assert body["detail"].startswith("data.ele_meter_id: meter 77 is not in this EMS's site")
    command = (await platform.admin.get(f"/api/commands/{body['mid']}")).json()
    assert (command["state"], command["msg"]) == ("rejected", body["detail"])


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({**CREATE_DATA, "over_demand_condition": [1] * 13}, "over_demand_condition: "),
        ({**CREATE_DATA, "streaming_status": 3}, "streaming_status: must be 1 (enabled)"),
        ({k: v for k, v in CREATE_DATA.items() if k != "ele_meter_id"}, "ele_meter_id: "),
    ],
    ids=["13-months", "status-3", "no-meter"],
)
async def test_invalid_body_is_refused_before_sending(
    platform: Platform, body: dict[str, Any], expected: str
) -> None:
    """Bad bodies are 422 naming field and rule, and no command is sent or audited."""
    registered = await platform.admin.post(
        "/api/devices", json={"uid": "gg-nobody", "scheme": "custom", "prefix": "nowhere/x"}
    )
    assert registered.status_code == 201, registered.text
    response = await platform.admin.post("/api/devices/gg-nobody/strategies", json=body)
    assert response.status_code == 422
    assert expected in response.json()["detail"]
    assert (await platform.admin.get("/api/commands")).json()["total"] == 0


async def test_fleet_apply_reports_each_device(
    platform: Platform, agent_factory: AgentFactory, prefix: str
) -> None:
    """Two live agents get the strategy; a registered but silent device is a 504 of its own."""
    agents = [await agent_factory(), await agent_factory()]
    for agent in agents:
        await device_seen(platform, agent.uid)
    await platform.admin.post(
        "/api/devices", json={"uid": "gg-quiet", "scheme": "custom", "prefix": prefix}
    )
    platform.running.services.commander.timeout_s = 0.3  # type: ignore[union-attr]
    response = await platform.admin.post(
        "/api/fleet/apply", json={"strategy": CREATE_DATA, "concurrency": 2}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    by_uid = {i["uid"]: i for i in body["items"]}
    assert {by_uid[a.uid]["status"] for a in agents} == {200}
    assert by_uid["gg-quiet"]["status"] == 504
    assert (body["succeeded"], body["failed"]) == (2, 1)
    again = await platform.admin.post(
        "/api/fleet/apply",
        json={"strategy": {**CREATE_DATA, "streaming_condition": 30}, "devices": {"online": True}},
    )
    assert {i["uid"] for i in again.json()["items"]} == {a.uid for a in agents}
    for agent in agents:

        async def updated(uid: str = agent.uid) -> list[Any] | None:
            body = (await platform.admin.get(f"/api/devices/{uid}/strategies")).json()
            return body if [s["streaming_condition"] for s in body] == [30] else None

        await eventually(updated, what="the fleet update on every device")
