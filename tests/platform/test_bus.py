"""The bus's lanes: arrival order per lane, a failing handler does not stop its lane."""

from __future__ import annotations

import asyncio

import pytest

from gridguard.platform.bus import STATUS_SUFFIX, Bus, Receipt
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
