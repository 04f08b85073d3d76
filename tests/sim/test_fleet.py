"""The fleet simulator over a private Mosquitto: 20 devices, every op, through the SDK."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import aiomqtt
import pytest

from gridguard.client import StrategyClient
from gridguard.control.status import ControlStatus
from gridguard.protocol import codec
from gridguard.protocol.models import ListPost
from gridguard.protocol.topics import TopicScheme
from gridguard.sim.fleet import Fleet, FleetConfig, uid_of
from gridguard.testing.examples import CREATE_DATA
from gridguard.testing.mosquitto import MosquittoProcess, private_broker
from gridguard.vocab import DeviceClass

pytestmark = pytest.mark.integration

COUNT = 20
CREATE = {**CREATE_DATA, "ele_meter_id": 1}
"""Devices 0, 1 (mod 4) have meter 1 with storage behind it."""
ENVELOPE = ("type", "device_uid", "timestamp")


@pytest.fixture(scope="module")
def broker() -> Iterator[MosquittoProcess]:
    with private_broker() as process:
        yield process


@pytest.fixture
async def fleet(broker: MosquittoProcess) -> AsyncIterator[Fleet]:
    config = FleetConfig(
        count=COUNT,
        mqtt_url=broker.url,
        prefix=f"test/fleet-{uuid.uuid4().hex[:8]}",
        status_interval_s=0.5,
        stats_interval_s=3600,
        connectors=8,
    )
    running = Fleet(config, echo=lambda _: None)
    stop = asyncio.Event()
    task = asyncio.create_task(running.run(stop))
    await asyncio.wait_for(running.all_connected.wait(), 20)
    yield running
    stop.set()
    await asyncio.wait_for(task, 10)


@asynccontextmanager
async def ems(fleet: Fleet, number: int) -> AsyncIterator[StrategyClient]:
    scheme = TopicScheme("custom", prefix=fleet.config.prefix)
    async with StrategyClient(fleet.config.mqtt_url, scheme, uid_of(fleet.config, number)) as sdk:
        yield sdk


async def list_where(sdk: StrategyClient, count: int) -> ListPost:
    """The first list/post (retained one included) with ``count`` strategies."""
    async with asyncio.timeout(10):
        async for report in sdk.lists():
            if len(report.data) == count:
                return report
    raise AssertionError("unreachable")


async def test_create_answers_200_and_updates_list_post(fleet: Fleet) -> None:
    """A create gets 200 with the new id; list/post then carries it, fully populated."""
    async with ems(fleet, 0) as sdk:
        await list_where(sdk, 0)  # the retained report of the fresh device
        created = await sdk.create(CREATE)
        assert (created.code, created.data and created.data.id) == (200, 1), created.msg
        report = await list_where(sdk, 1)
    strategy = report.data[0]
    assert report.device_uid == uid_of(fleet.config, 0)
    assert (strategy.id, strategy.ele_meter_id, strategy.ele_meter.id) == (1, 1, 1)
    assert [d.id for d in strategy.devices] == [1]  # the storage behind meter 1
    assert strategy.current_over_demand_condition == CREATE["over_demand_condition"][0]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({**CREATE, "ele_meter_id": 5}, "data.ele_meter_id"),
        ({**CREATE, "over_demand_condition": [1, 2]}, "data.over_demand_condition"),
        ({**CREATE, "streaming_status": 3}, "data.streaming_status"),
    ],
    ids=["unknown-meter", "eleven-months-short", "bad-switch"],
)
async def test_bad_create_is_400_naming_the_field(
    fleet: Fleet, data: dict[str, object], field: str
) -> None:
    """Each broken rule is refused with a message naming the field; nothing is stored."""
    async with ems(fleet, 1) as sdk:
        refused = await sdk.create(data)
        assert refused.code == 400
        assert field in refused.msg
        assert (await sdk.sync()).data == []


async def test_repeated_mid_gets_the_identical_reply_and_changes_nothing(fleet: Fleet) -> None:
    """D5: the same (op, mid) twice: byte-identical reply, one strategy."""
    async with ems(fleet, 4) as sdk:
        mid = str(uuid.uuid4())
        envelope = {"mid": mid, "type": "streaming_overdemand_create", "timestamp": 1}
        payload = codec.json_bytes({**envelope, "device_uid": sdk._device, "data": CREATE})
        first = await sdk.send_raw("create", payload, mid)
        again = await sdk.send_raw("create", payload, mid)
        assert again == first
        assert [s.id for s in (await sdk.sync()).data] == [1]


async def test_update_update_all_delete_and_sync(fleet: Fleet) -> None:
    """Every op in turn on one device, each answered 200 and reflected by sync."""
    async with ems(fleet, 5) as sdk:
        assert (await sdk.create(CREATE)).code == 200
        assert (await sdk.update({"id": 1, "streaming_condition": 25})).code == 200
        pv = {**CREATE, "device_type": DeviceClass.PV.value}
        batch = await sdk.update_all([pv, {"id": 1, "over_demand_status": 2}])
        assert batch.code == 200, batch.msg
        assert [d.id for d in batch.data or []] == [2, 1]
        synced = await sdk.sync()
        got = [
            (s.id, s.device_type, s.streaming_condition, s.over_demand_status) for s in synced.data
        ]
        assert got == [(1, 2, 25, 2), (2, 3, 10, 1)]
        assert (await sdk.delete(1)).code == 200
        assert (await sdk.delete(1)).code == 400  # D10: unknown id
        assert [s.id for s in (await sdk.sync()).data] == [2]
        await list_where(sdk, 1)


async def test_status_post_arrives_in_the_agents_shape(fleet: Fleet) -> None:
    """status/post comes every interval with the edge agent's fields and sane values."""
    uid = uid_of(fleet.config, 2)
    topic = f"{fleet.config.prefix}/{uid}/streaming_overdemand/status/post"
    async with aiomqtt.Client("127.0.0.1", int(fleet.address_text.rsplit(":", 1)[1])) as client:
        await client.subscribe(topic)
        async with asyncio.timeout(10):
            message = await anext(aiter(client.messages))
    assert isinstance(message.payload, bytes)
    document = json.loads(message.payload)
    assert (document["type"], document["device_uid"]) == ("streaming_overdemand_status", uid)
    status = ControlStatus.model_validate({k: v for k, v in document.items() if k not in ENVELOPE})
    assert [m.meter_id for m in status.meters] == [9]
    assert status.meters[0].grid_power_kw is not None
    assert [(d.kind, d.id) for d in status.devices] == [("pv", 1)]
