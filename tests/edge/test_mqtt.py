"""The edge agent over real brokers: every op, every scheme, bad input, idempotency."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from gridguard.client import StrategyClient
from gridguard.protocol import codec
from gridguard.protocol.models import ListPost
from gridguard.protocol.topics import build_topic
from gridguard.testing.examples import CREATE_DATA
from tests.edge.conftest import SCHEMES, AgentFactory, make_site, scheme_of

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).parents[1] / "fixtures" / "spec"
CREATE = CREATE_DATA


def spec_payload(name: str, device_uid: str) -> bytes:
    """A spec example verbatim, addressed to this device and with a fresh mid."""
    text = (FIXTURES / name).read_text().replace("iYRkfVpi77", device_uid)
    return text.replace("ee2e8f09-b280-4e4d-bcb9-1529b703cfed", str(uuid.uuid4())).encode()


def mid_of(payload: bytes) -> str:
    return str(codec.loads_lenient(payload)["mid"])


@pytest.mark.parametrize("scheme", list(SCHEMES))
async def test_every_op_under_each_scheme(
    broker_url: str, scheme: str, tmp_path: Path, agent_factory: AgentFactory
) -> None:
    """create, update, sync, update_all, delete: all answered 200 on each scheme and broker."""
    agent = await agent_factory(make_site(broker_url, scheme, tmp_path / "edge.db"))
    async with agent.client() as ems:
        created = await ems.create(CREATE)
        assert created.code == 200, created.msg
        assert created.data is not None
        strategy_id = created.data.id
        assert (await ems.update({"id": strategy_id, "streaming_condition": 20})).code == 200
        synced = await ems.sync()
        assert [(s.id, s.streaming_condition) for s in synced.data] == [(strategy_id, 20)]
        batch = await ems.update_all([{**CREATE, "device_type": 3}, {"id": strategy_id}])
        assert batch.code == 200, batch.msg
        assert batch.data is not None
        assert [d.id for d in batch.data] == [strategy_id + 1, strategy_id]
        assert (await ems.delete(strategy_id)).code == 200
        assert [s.device_type for s in (await ems.sync()).data] == [3]


async def test_spec_examples_verbatim_get_200(
    broker_url: str, tmp_path: Path, agent_factory: AgentFactory
) -> None:
    """The spec's command examples, sent as they are, each get 200."""
    agent = await agent_factory(make_site(broker_url, "wudun", tmp_path / "edge.db"))
    uid = agent.site.device.uid
    async with agent.client() as ems:
        for name, op in [
            ("04-create-command.json", "create"),
            ("06-update-command.json", "update"),
            ("02-sync-command.json", "sync"),
            ("10-update_all-command.json", "update_all"),
            ("08-delete-command.json", "delete"),
        ]:
            payload = spec_payload(name, uid)
            raw = await ems.send_raw(op, payload, mid_of(payload))
            body = json.loads(raw)
            assert (op, body["code"], body["msg"]) == (op, 200, "")


BAD_INPUTS: list[tuple[str, str, Any, str]] = [
    (
        "field-rule",
        "update",
        {"id": 1, "streaming_status": 3},
        "data.streaming_status: must be 1 (enabled) or 2 (disabled), got 3",
    ),
    (
        "monthly-count",
        "create",
        {**CREATE, "over_demand_condition": [1] * 13},
        "data.over_demand_condition: expected 12 monthly values (Jan..Dec), got 13",
    ),
    ("unknown-id", "delete", {"id": 99}, "data.id: strategy 99 not found"),
    (
        "duplicate",
        "create",
        CREATE,
        "data: meter 9 already has a storage strategy (id 1); update it instead (D7)",
    ),
    (
        "unknown-meter",
        "create",
        {**CREATE, "ele_meter_id": 77},
        "data.ele_meter_id: meter 77 is not in this EMS's site configuration (meters: 9, 10)",
    ),
    (
        "phase-without-phases",
        "update",
        {"id": 1, "ele_meter_id": 10, "individual_phase_streaming_status": 1},
        (
            "data.individual_phase_streaming_status: meter 10 gives no per-phase power, so "
            "single-phase anti-backflow cannot be enabled (D16)"
        ),
    ),
    (
        "batch-item",
        "update_all",
        [CREATE, {"id": 1, "dynamic_demand_percentage": 0}],
        "data[1].dynamic_demand_percentage: must be a number in (0, 100], got 0",
    ),
]


async def test_bad_input_gets_400_and_changes_nothing(
    broker_url: str, tmp_path: Path, agent_factory: AgentFactory
) -> None:
    """Each bad-input class: 400 naming field and rule; state compared through sync."""
    site = make_site(broker_url, "user", tmp_path / "edge.db")
    site = site.model_copy(
        update={"meters": [site.meters[0], site.meters[1].model_copy(update={"per_phase": False})]}
    )
    agent = await agent_factory(site)
    async with agent.client() as ems:
        assert (await ems.create(CREATE)).code == 200
        before = (await ems.sync()).data
        for case, op, data, msg in BAD_INPUTS:
            result = await ems.request(op, data)
            assert (case, result.code, result.msg) == (case, 400, msg)
        for case, mid, tail, start in [
            ("not-json", "6b1d3a9e-3a47-4f59-8f77-0b5f3f0f6a11", b", ", "invalid JSON at"),
            (
                "too-large",
                "6b1d3a9e-3a47-4f59-8f77-0b5f3f0f6a12",
                b" " * 300_000,
                "payload is 300046 bytes",
            ),
        ]:
            payload = b'{"mid": "' + mid.encode() + b'"' + tail
            raw = json.loads(await ems.send_raw("create", payload, mid))
            assert (case, raw["code"]) == (case, 400)
            assert raw["msg"].startswith(start)
        assert (await ems.sync()).data == before


async def test_repeated_mid_identical_reply_across_restart(
    broker_url: str, tmp_path: Path, agent_factory: AgentFactory
) -> None:
    """D5: the same mid again gets the identical reply and changes nothing, even after restart."""
    site = make_site(broker_url, "custom", tmp_path / "edge.db")
    agent = await agent_factory(site)
    mid = str(uuid.uuid4())
    async with agent.client() as ems:
        first = await ems.request("create", CREATE, mid=mid)
        again = await ems.request("create", CREATE, mid=mid)
        assert again == first
    await agent.stop()
    restarted = await agent_factory(site)
    async with restarted.client() as ems:
        after = await ems.request("create", CREATE, mid=mid)
        assert after == first
        assert len((await ems.sync()).data) == 1


async def test_list_post_on_connect_is_retained(
    broker_url: str, tmp_path: Path, agent_factory: AgentFactory
) -> None:
    """D13/D5: a late subscriber sees the current list at once (retained)."""
    agent = await agent_factory(make_site(broker_url, "custom", tmp_path / "edge.db"))
    async with agent.client() as ems:
        assert (await ems.create(CREATE)).code == 200
        await until_listed(ems, [9])  # list/post follows a change once changes pause
    topic = build_topic(scheme_of(agent.site), agent.site.device.uid, "list", "post")
    host, port = agent.site.mqtt.url.removeprefix("mqtt://").split(":")
    async with aiomqtt.Client(host, int(port)) as late:
        await late.subscribe(topic, qos=1)
        async for message in late.messages:
            assert isinstance(message.payload, bytes)
            listed = codec.parse_model(ListPost, message.payload)
            assert message.retain
            assert [s.ele_meter_id for s in listed.data] == [9]
            break
    await clear_retained(host, int(port), topic)


async def until_listed(ems: StrategyClient, meter_ids: list[int], timeout_s: float = 10) -> None:
    """Wait for a list/post report naming exactly these meters."""
    try:
        async with asyncio.timeout(timeout_s):
            async for report in ems.lists():
                if [s.ele_meter_id for s in report.data] == meter_ids:
                    return
    except TimeoutError:
        raise AssertionError(f"no list/post of meters {meter_ids} in {timeout_s} s") from None


async def clear_retained(host: str, port: int, topic: str) -> None:
    """Leave the shared broker as we found it."""
    async with aiomqtt.Client(host, port) as client:
        await client.publish(topic, b"", qos=1, retain=True)
