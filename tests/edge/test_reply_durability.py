"""Acknowledged means answered: ``kill -9`` of the agent in the middle of a burst loses no
reply (issue: acknowledged but never answered). A command is acknowledged to the broker only
once the broker has acknowledged its reply; until then the broker delivers it again, and the
agent answers the redelivery from its reply table."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import signal
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import pytest

from gridguard.mqtt.session import NODELAY_OPTION, forwarding_queue
from gridguard.protocol.topics import COMMAND_OPS, build_topic
from gridguard.site.config import SiteConfig
from gridguard.testing.mosquitto import MosquittoProcess
from tests.edge.conftest import make_site, scheme_of
from tests.edge.test_mqtt import CREATE
from tests.edge.test_resilience import start_agent_process, write_config

pytestmark = pytest.mark.slow

BURST = 400
KILL_AFTER = int(os.environ.get("GG_KILL_AFTER", "150"))
"""Replies seen before the kill: the agent is then deep in the burst, replies queued."""


class Platform:
    """A fast raw publisher (1,000 in flight) that records every reply by the mid it answers."""

    def __init__(self, port: int, site: SiteConfig) -> None:
        self.site = site
        self.replies: dict[str, list[dict[str, object]]] = {}
        self.first_reply = asyncio.Event()
        self.client = aiomqtt.Client(
            "127.0.0.1",
            port,
            identifier=f"gg-test-platform-{uuid.uuid4().hex[:8]}",
            socket_options=[NODELAY_OPTION],
            max_inflight_messages=1000,
            queue_type=forwarding_queue(self._on_message),
        )
        self.client.pending_calls_threshold = 100_000

    def topic(self, op: str, direction: str) -> str:
        return build_topic(scheme_of(self.site), self.site.device.uid, op, direction)

    def _on_message(self, message: aiomqtt.Message) -> None:
        assert isinstance(message.payload, bytes)
        body = json.loads(message.payload)
        self.replies.setdefault(body["reply"], []).append(body)
        self.first_reply.set()

    async def send(self, op: str, data: object, mid: str, timeout_s: float = math.inf) -> None:
        payload = json.dumps(
            {
                "mid": mid,
                "type": f"streaming_overdemand_{op}",
                "device_uid": self.site.device.uid,
                "timestamp": 1_717_664_360_213,
                "data": data,
            }
        ).encode()
        await self.client.publish(self.topic(op, "command"), payload, qos=1, timeout=timeout_s)

    async def wait_count(self, count: int, timeout_s: float) -> None:
        async def enough() -> None:
            while len(self.replies) < count:
                self.first_reply.clear()
                await self.first_reply.wait()

        await asyncio.wait_for(enough(), timeout_s)

    async def wait_answered(self, mids: list[str], timeout_s: float) -> None:
        async def all_in() -> None:
            while any(m not in self.replies for m in mids):
                self.first_reply.clear()
                await self.first_reply.wait()

        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_in(), timeout_s)


@contextlib.asynccontextmanager
async def platform(port: int, site: SiteConfig) -> AsyncIterator[Platform]:
    p = Platform(port, site)
    async with p.client:
        await p.client.subscribe([(p.topic(op, "result"), 1) for op in COMMAND_OPS])
        yield p


async def test_kill_9_during_a_burst_leaves_no_command_unanswered(
    own_mosquitto: MosquittoProcess, tmp_path: Path
) -> None:
    site = make_site(own_mosquitto.url, "custom")
    config = write_config(tmp_path, own_mosquitto.url, site.device.uid)
    process = start_agent_process(config, tmp_path / "agent.log")
    try:
        async with platform(own_mosquitto.port, site) as ems:
            create_mid = str(uuid.uuid4())
            for _ in range(100):  # until the agent is up
                await ems.send("create", CREATE, create_mid)
                await ems.wait_answered([create_mid], 0.5)
                if create_mid in ems.replies:
                    break
            assert ems.replies[create_mid][0]["code"] == 200
            mids = [str(uuid.uuid4()) for _ in range(BURST)]
            ems.first_reply.clear()
            ems.replies.clear()
            await asyncio.gather(
                *(
                    ems.send("update", {"id": 1, "streaming_condition": n}, mid)
                    for n, mid in enumerate(mids, start=1)
                )
            )
            await ems.wait_count(KILL_AFTER, 30)
            os.kill(process.pid, signal.SIGKILL)
            process.wait(10)
            answered_before_restart = len(ems.replies)
            process = start_agent_process(config, tmp_path / "agent.log")
            await ems.wait_answered(mids, 60)
            missing = [m for m in mids if m not in ems.replies]
            print(f"burst {BURST}: {answered_before_restart} answered before the kill")  # noqa: T201
            assert missing == [], f"{len(missing)} of {BURST} commands never answered"
            for mid in mids:  # a duplicate reply is the same reply
                assert len({json.dumps(r, sort_keys=True) for r in ems.replies[mid]}) == 1
            assert all(ems.replies[m][0]["code"] == 200 for m in mids)
    finally:
        process.kill()
        process.wait(10)
