"""The demo's embedded broker: retained messages only for a client's own filters; its child
process starts, serves and ends when told (or when its parent's pipe closes)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import aiomqtt
import pytest

from gridguard.demo.broker import BrokerProcess, EmbeddedBroker
from gridguard.ports import free_port, port_open

pytestmark = pytest.mark.integration


def client(port: int) -> aiomqtt.Client:
    return aiomqtt.Client("127.0.0.1", port, identifier=f"t-{uuid.uuid4().hex[:8]}")


async def received_within(port: int, topic_filter: str, window_s: float) -> list[str]:
    """Topics a new client subscribed to ``topic_filter`` receives within ``window_s``."""
    topics: list[str] = []
    async with client(port) as sub:
        await sub.subscribe(topic_filter, qos=1)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(window_s):
                async for message in sub.messages:
                    topics.append(message.topic.value)  # noqa: PERF401 - until the timeout
    return topics


async def serve_retained(port: int) -> list[str]:
    """A retained list/post, a wildcard subscriber that matches it, then a newcomer
    subscribed to a command topic only, and a newcomer subscribed to the list topic."""
    async with client(port) as watcher:
        await watcher.subscribe("v1/x/+/streaming_overdemand/list/post", qos=1)
        async with client(port) as device:
            await device.publish(
                "v1/x/d1/streaming_overdemand/list/post", b"{}", qos=1, retain=True
            )
        own = await received_within(port, "v1/x/d1/streaming_overdemand/list/post", 2.0)
        assert own == ["v1/x/d1/streaming_overdemand/list/post"]  # the retained one is there
        return await received_within(port, "v1/x/d2/streaming_overdemand/+/command", 1.0)


async def test_a_newcomer_gets_no_retained_message_its_filters_do_not_match() -> None:
    """amqtt 0.12 sent each new client every retained message that *any* client's filter
    matched; the demo's broker sends those its own subscriptions match."""
    port = free_port()
    async with EmbeddedBroker(port):
        assert await serve_retained(port) == []


async def test_broker_process_serves_and_stops() -> None:
    port = free_port()
    async with BrokerProcess(port) as broker:
        assert port_open(port)
        assert await serve_retained(broker.port) == []
    assert not port_open(port)
