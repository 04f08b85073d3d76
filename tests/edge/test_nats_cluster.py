"""Fail-over inside a broker cluster: a 3-node NATS cluster (JetStream, MQTT listener,
``stream_replicas 3``), the agent given all three URLs. The node the agent is on is killed
during a stream of commands; the platform, on another node, re-sends a command under the same
mid until answered. Every command is answered, every answer to a mid is the same, and nothing
is applied twice (create ids stay consecutive: ids are never reused, D7)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest

from gridguard.edge.health import refused_ops
from gridguard.protocol.topics import COMMAND_OPS
from gridguard.site.config import SiteConfig
from gridguard.testing.nats import NatsCluster, nats_binary
from tests.edge.conftest import AgentFactory, make_site, missing_service
from tests.edge.test_mqtt import CREATE
from tests.edge.test_reply_durability import Platform, platform

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
"""JetStream elects new leaders after a kill: on a loaded 2-core box that took over a minute.
Every wait below is bounded well inside this, so a stuck cluster fails with its logs."""
PAIRS = 30
KILL_AT = 21
RESEND_S = 3.0


@pytest.fixture
def cluster() -> Iterator[NatsCluster]:
    if nats_binary() is None:
        missing_service("nats-server is not installed")
    nats = NatsCluster()
    try:
        nats.start()
    except RuntimeError as exc:
        nats.remove()
        pytest.fail(str(exc))
    yield nats
    nats.remove()


async def wait_ready(port: int, timeout_s: float = 60.0) -> None:
    """JetStream elects its leaders after the ports open: until then MQTT connects fail."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            async with aiomqtt.Client(
                "127.0.0.1", port, identifier=f"gg-probe-{port}", timeout=5, clean_session=False
            ):
                return
        except aiomqtt.MqttError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)  # a connect retry, not a wait for behaviour


class ReconnectingPlatform:
    """The test's platform, reconnecting as a real one does: a node that cannot store a QoS 1
    message while its JetStream elects leaders drops the publisher's connection. Replies are
    recorded across connections (a clean session: a reply sent while away is lost, and the
    re-send under the same mid gets it again)."""

    def __init__(self, port: int, site: SiteConfig) -> None:
        self.port, self.site = port, site
        self.replies: dict[str, list[dict[str, object]]] = {}
        self._stack = contextlib.AsyncExitStack()
        self.current: Platform | None = None

    async def connect(self, timeout_s: float = 60.0) -> Platform:
        await self.close()
        deadline = time.monotonic() + timeout_s
        while (opened := await self._open()) is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"cannot connect to 127.0.0.1:{self.port}")
            await asyncio.sleep(0.5)  # a connect retry, not a wait for behaviour
        self._stack, self.current = opened
        self.current.replies = self.replies
        return self.current

    async def _open(self) -> tuple[contextlib.AsyncExitStack, Platform] | None:
        """A connection whose subscriptions were all granted, or None."""
        stack = contextlib.AsyncExitStack()
        try:
            current = await stack.enter_async_context(platform(self.port, self.site))
            # A node without its JetStream leaders refuses a subscription (SUBACK 0x80):
            # as the agent does, a platform checks the grant and tries again.
            granted = await current.client.subscribe(
                [(current.topic(op, "result"), 1) for op in COMMAND_OPS]
            )
        except aiomqtt.MqttError:
            granted = None
        if granted is None or refused_ops(COMMAND_OPS, granted):
            with contextlib.suppress(aiomqtt.MqttError):
                await stack.aclose()
            return None
        return stack, current

    async def close(self) -> None:
        self.current = None
        with contextlib.suppress(aiomqtt.MqttError):
            await self._stack.aclose()


async def answered(ems: ReconnectingPlatform, op: str, data: object) -> dict[str, object]:
    """Send until answered, always under the same mid (what a platform does on a timeout)."""
    mid = str(uuid.uuid4())
    for _ in range(40):
        current = ems.current or await ems.connect()
        try:
            # Bounded: while the cluster re-elects its JetStream leaders a node may hold a
            # PUBACK back for as long as that takes, or drop the connection.
            await current.send(op, data, mid, timeout_s=RESEND_S)
        except aiomqtt.MqttError:
            await ems.close()
            continue
        await current.wait_answered([mid], RESEND_S)
        if mid in ems.replies:
            return ems.replies[mid][0]
    raise AssertionError(f"{op} {mid} never answered")


async def test_kill_the_agents_node_during_a_command_stream(
    cluster: NatsCluster,
    agent_factory: AgentFactory,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="gridguard")
    try:
        await kill_during_stream(cluster, agent_factory, tmp_path)
    except BaseException:
        print(cluster.log_tails())  # noqa: T201 - shown beside the failure
        raise


async def kill_during_stream(
    cluster: NatsCluster, agent_factory: AgentFactory, tmp_path: Path
) -> None:
    for node in cluster.nodes:
        await wait_ready(node.mqtt_port)
    site = make_site(cluster.urls[0], db_path=tmp_path / "edge.db", urls=cluster.urls)
    agent = await agent_factory(site)
    assert agent.agent.broker_url == cluster.urls[0]
    platform_node = cluster.nodes[2]
    ids: list[int] = []
    ems = ReconnectingPlatform(platform_node.mqtt_port, site)
    await ems.connect()
    try:
        for step in range(PAIRS):
            if step == KILL_AT // 2:
                cluster.kill(cluster.nodes[0])  # the agent's node (it is first in its list)
            created = await answered(ems, "create", CREATE)
            assert created["code"] == 200, created
            ids.append(created["data"]["id"])  # type: ignore[index]
            deleted = await answered(ems, "delete", {"id": ids[-1]})
            assert deleted["code"] == 200, deleted
        await asyncio.wait_for(agent.agent.connected.wait(), 30)
    finally:
        await ems.close()
    assert ids == list(range(1, PAIRS + 1))  # no create applied twice
    for mid, replies in ems.replies.items():
        assert all(r == replies[0] for r in replies), mid  # a repeat is the same reply
    assert agent.agent.connected.is_set()
    assert agent.agent.broker_url in cluster.urls[1:]  # it failed over
