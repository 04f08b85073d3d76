"""The SDK's message routing, without a broker: results by ``reply`` (D2), list/post kept."""

from __future__ import annotations

import asyncio

import aiomqtt
import pytest

from gridguard.client import LISTS_KEPT, StrategyClient
from gridguard.protocol.topics import TopicScheme, build_topic

pytestmark = pytest.mark.unit

SCHEME = TopicScheme("custom", prefix="v1/gridguard")
DEVICE = "gg-sdk-001"


def message(topic: str, payload: bytes) -> aiomqtt.Message:
    return aiomqtt.Message(topic, payload, qos=1, retain=False, mid=1, properties=None)


def client() -> StrategyClient:
    return StrategyClient("mqtt://127.0.0.1:1", SCHEME, DEVICE)  # never connected here


async def test_a_result_resolves_the_command_it_replies_to() -> None:
    sdk = client()
    future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
    sdk._pending["m-1"] = future
    payload = b'{"reply":"m-1","code":200}'
    sdk._on_message(message(build_topic(SCHEME, DEVICE, "update", "result"), payload))
    assert future.result() == payload
    assert "m-1" not in sdk._pending


async def test_unknown_topics_and_unreadable_payloads_are_ignored() -> None:
    """A retained message replayed on another topic, or a broken result, changes nothing."""
    sdk = client()
    future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
    sdk._pending["m-1"] = future
    sdk._on_message(message("somebody/else/entirely", b'{"reply":"m-1"}'))
    sdk._on_message(message(build_topic(SCHEME, DEVICE, "update", "result"), b"{not json"))
    assert not future.done()
    assert sdk._lists.empty()


async def test_only_the_newest_list_posts_are_kept() -> None:
    sdk = client()
    topic = build_topic(SCHEME, DEVICE, "list", "post")
    for index in range(LISTS_KEPT + 5):
        sdk._on_message(message(topic, str(index).encode()))
    kept = [sdk._lists.get_nowait() for _ in range(sdk._lists.qsize())]
    assert kept == [str(i).encode() for i in range(5, LISTS_KEPT + 5)]
