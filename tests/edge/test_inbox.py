"""The agent's inbox: messages reach the command loop straight from aiomqtt's queue option."""

from __future__ import annotations

import asyncio
import uuid

import aiomqtt
import pytest

from gridguard.edge.agent import Inbox
from gridguard.mqtt.session import forwarding_queue, parse_mqtt_url


def message(topic: str, payload: bytes) -> aiomqtt.Message:
    return aiomqtt.Message(topic, payload, qos=1, retain=False, mid=1, properties=None)


@pytest.mark.unit
async def test_take_returns_what_waits_in_order_up_to_the_limit() -> None:
    inbox = Inbox()
    for index in range(5):
        inbox.push(message("t", str(index).encode()))
    first = await inbox.take(3)
    rest = await inbox.take(3)
    assert [m.payload for m in first] == [b"0", b"1", b"2"]
    assert [m.payload for m in rest] == [b"3", b"4"]


@pytest.mark.unit
async def test_take_waits_for_the_first_message() -> None:
    inbox = Inbox()
    waiting = asyncio.create_task(inbox.take(10))
    done, _ = await asyncio.wait({waiting}, timeout=0.01)  # observes an absence: no event
    assert not done
    inbox.push(message("t", b"late"))
    assert [m.payload for m in await asyncio.wait_for(waiting, 1)] == [b"late"]


@pytest.mark.integration
async def test_aiomqtt_hands_received_messages_to_the_inbox(broker_url: str) -> None:
    """The fast path is taken: the message is in the inbox and never in aiomqtt's own queue (if
    aiomqtt stopped calling ``put_nowait``, the agent would still work through its watcher, but
    this test would fail)."""
    address = parse_mqtt_url(broker_url)
    topic = f"gridguard-test/inbox/{uuid.uuid4()}"
    inbox = Inbox()
    async with aiomqtt.Client(
        address.host, address.port, queue_type=forwarding_queue(inbox.push)
    ) as client:
        await client.subscribe(topic, qos=1)
        await client.publish(topic, b"hello", qos=1)
        received = await asyncio.wait_for(inbox.take(10), 5)
        assert [(m.topic.value, m.payload) for m in received] == [(topic, b"hello")]
        assert len(client.messages) == 0


@pytest.mark.unit
@pytest.mark.parametrize("limit", [1, 256])
async def test_take_never_returns_empty(limit: int) -> None:
    inbox = Inbox()
    inbox.push(message("t", b"x"))
    assert len(await inbox.take(limit)) == 1
