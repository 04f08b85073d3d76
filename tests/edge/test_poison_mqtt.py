"""Poison messages over MQTT: each is answered (when it names a UUID mid), acknowledged, and
the session goes on serving: the next command is answered (issue: poison messages)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from gridguard.edge.batch import Handled
from gridguard.protocol.topics import build_topic
from gridguard.testing.mosquitto import MosquittoProcess
from tests.edge.conftest import AgentFactory, make_site, scheme_of

pytestmark = pytest.mark.integration

TS = 1_717_664_360_213


def envelope(op: str, mid: str, device: str, rest: str) -> bytes:
    head = f'{{"mid": "{mid}", "type": "streaming_overdemand_{op}", "device_uid": "{device}", '
    return (head + f'"timestamp": {TS}{rest}}}').encode()


Poison = Callable[[str, str, str], bytes]
POISONS: dict[str, tuple[str, Poison]] = {
    "deep-nesting": (
        "sync",
        lambda op, mid, dev: envelope(op, mid, dev, ', "data": ' + "[" * 1000 + "]" * 1000),
    ),
    "deep-nesting-unparsed": (
        "create",
        lambda op, mid, dev: envelope(op, mid, dev, ', "x": ' + "[" * 100_000),
    ),
    "surrogate-trace": (
        "update",
        lambda op, mid, dev: envelope(op, mid, dev, ', "trace_id": "\\ud800"'),
    ),
    "huge-number": (
        "create",
        lambda op, mid, dev: envelope(
            op,
            mid,
            dev,
            ', "data": {'
            '"ele_meter_id": 9, "streaming_status": 1, "streaming_condition": '
            + "9"
            * 310
            + ', "individual_phase_streaming_status": 2, '
            '"over_demand_status": 1, "over_demand_condition": [1,1,1,1,1,1,1,1,1,1,1,1],'
            ' "dynamic_demand_percentage": 80}',
        ),
    ),
    "huge-percentage": (
        "update",
        lambda op, mid, dev: envelope(
            op, mid, dev, ', "data": {"id": 1, "dynamic_demand_percentage": ' + "9" * 310 + "}"
        ),
    ),
    "nan": ("delete", lambda op, mid, dev: envelope(op, mid, dev, ', "data": {"id": NaN}')),
    "not-utf8": (
        "update_all",
        lambda op, mid, dev: envelope(op, mid, dev, ', "data": []').replace(b"[]", b'["\xff\xfe"]'),
    ),
}


@pytest.mark.parametrize("name", list(POISONS))
async def test_poison_is_answered_and_the_agent_keeps_serving(
    broker_url: str, agent_factory: AgentFactory, name: str, tmp_path: Path
) -> None:
    op, build = POISONS[name]
    agent = await agent_factory(make_site(broker_url, db_path=tmp_path / "edge.db"))
    async with agent.client(timeout_s=10) as ems:
        mid = str(uuid.uuid4())
        answer = json.loads(await ems.send_raw(op, build(op, mid, agent.site.device.uid), mid))
        assert (answer["code"], answer["reply"]) == (400, mid), answer
        for _ in range(2):  # the session survived: later commands are answered
            assert (await ems.sync()).code == 200


async def test_an_unrecoverable_mid_still_leaves_the_session_serving(
    broker_url: str, agent_factory: AgentFactory, tmp_path: Path
) -> None:
    """A surrogate as the mid: the 400 carries no reply mid (it could not be encoded)."""
    agent = await agent_factory(make_site(broker_url, db_path=tmp_path / "edge.db"))
    device = agent.site.device.uid
    async with agent.client(timeout_s=10) as ems:
        payload = envelope("sync", "\\ud800", device, "")
        topic = build_topic(scheme_of(agent.site), device, "sync", "command")
        await ems._client.publish(topic, payload, qos=1)
        assert (await ems.sync()).code == 200
        assert (
            await ems.create(
                {
                    "ele_meter_id": 9,
                    "streaming_status": 1,
                    "individual_phase_streaming_status": 2,
                    "over_demand_status": 1,
                    "over_demand_condition": [5] * 12,
                    "updated_by": "ok",
                    "dynamic_demand_percentage": 80,
                }
            )
        ).code == 200
        assert (await ems.sync()).code == 200


async def test_a_failure_outside_the_service_guards_is_a_500_not_the_end(
    own_mosquitto: MosquittoProcess,
    agent_factory: AgentFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Last resort: even if the service itself raised, each command gets a 500 and the session
    serves on."""
    agent = await agent_factory(make_site(own_mosquitto.url, db_path=tmp_path / "edge.db"))
    real = agent.agent._service.handle_batch
    broken = {"left": 1}

    async def breaks_once(commands: list[tuple[str, bytes]]) -> list[Handled]:
        if broken["left"]:
            broken["left"] -= 1
            raise RuntimeError("bug")
        handled: list[Handled] = await real(commands)
        return handled

    monkeypatch.setattr(agent.agent._service, "handle_batch", breaks_once)
    async with agent.client(timeout_s=10) as ems:
        assert (await ems.sync()).code == 500
        assert (await ems.sync()).code == 200
