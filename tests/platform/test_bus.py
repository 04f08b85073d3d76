"""The bus's lanes: arrival order per lane, a failing handler does not stop its lane."""

from __future__ import annotations

import asyncio

import pytest

from gridguard.platform.bus import STATUS_SUFFIX, Bus, Receipt
from gridguard.platform.settings import Settings
from gridguard.testing.wait import wait_for

pytestmark = pytest.mark.unit


async def test_a_slow_result_does_not_hold_up_status_reports() -> None:
    handled: list[str] = []
    release = asyncio.Event()

    async def handler(topic: str, _payload: bytes, _receipt: Receipt) -> None:
        if topic == "p/d/streaming_overdemand/create/result":
            await release.wait()  # a commit that takes its time
        if topic.endswith("boom/result"):
            raise RuntimeError("handler failed")
        handled.append(topic)

    bus = Bus("mqtt://127.0.0.1:1", [], handler)
    lanes = [asyncio.create_task(lane.run()) for lane in (bus._status, bus._control)]
    try:
        for topic in [
            "p/d/streaming_overdemand/create/result",
            "p/d/streaming_overdemand/boom/result",
            "p/d/streaming_overdemand/list/post",
            *(f"p/d{i}/streaming_overdemand{STATUS_SUFFIX}" for i in range(3)),
        ]:
            bus._received(None, topic, b"{}")
        await wait_for(lambda: len(handled) == 3, 5.0, "the status reports")
        assert handled == [f"p/d{i}/streaming_overdemand/status/post" for i in range(3)]
        release.set()
        await wait_for(lambda: len(handled) == 5, 5.0, "the control lane")
        assert handled[3:] == [
            "p/d/streaming_overdemand/create/result",
            "p/d/streaming_overdemand/list/post",
        ]
    finally:
        for lane in lanes:
            lane.cancel()
        await asyncio.gather(*lanes, return_exceptions=True)


async def test_only_a_dead_instance_of_the_same_deployment_is_taken_over() -> None:
    """A will on the deployment's own gone topic starts a takeover (once); one of a platform
    serving other topics, our own, and a cleared one do not."""

    async def handler(_topic: str, _payload: bytes, _receipt: Receipt) -> None:
        return None

    ours = ["p/+/streaming_overdemand/+/result"]
    bus = Bus("mqtt://127.0.0.1:1", ours, handler, client_id="me", session_expiry_s=60)
    other = Bus("mqtt://127.0.0.1:1", ["q/+/streaming_overdemand/+/result"], handler)
    taken: list[str] = []

    async def adopt(dead: str) -> None:
        taken.append(dead)

    bus._adopt = adopt  # type: ignore[method-assign]
    for owner, payload in [
        (other, b"x"),  # another deployment's instance
        (bus, b""),  # a cleared will
        (bus, b"me"),  # our own (left by our previous run)
        (bus, b"x"),
        (bus, b"x"),  # the same will twice while it is taken over
    ]:
        client_id = "me" if payload == b"me" else "x"
        bus._received(None, owner._gone_of(client_id), payload)
    await wait_for(lambda: taken == ["x"], 5.0, "one takeover")
    assert bus._gone_of("x") != other._gone_of("x")


def test_a_client_id_that_cannot_name_a_topic_is_refused() -> None:
    with pytest.raises(ValueError, match="client_id 'a/b'"):
        Settings(client_id="a/b")
    with pytest.raises(ValueError, match="mqtt_version 3"):
        Settings(mqtt_version=3)


async def test_no_takeover_when_turned_off() -> None:
    async def handler(_topic: str, _payload: bytes, _receipt: Receipt) -> None:
        return None

    bus = Bus("mqtt://127.0.0.1:1", ["p/#"], handler, session_expiry_s=60, takeover=False)
    bus._received(None, bus._gone_of("x"), b"x")
    assert bus._adopting == {}
