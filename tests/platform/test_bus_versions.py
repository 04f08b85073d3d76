"""The platform's bus asks for MQTT 5 and falls back to 3.1.1 on a broker that does not take
it (the demo's amqtt leaves an MQTT 5 CONNECT unanswered); on Mosquitto it stays on 5."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import pytest

from gridguard.demo.broker import EmbeddedBroker
from gridguard.mqtt.lite import MQTT_5, MQTT_311, LiteClient
from gridguard.platform.bus import Bus, Receipt
from gridguard.ports import free_port, port_open
from gridguard.testing.wait import wait_for
from tests.platform.conftest import missing_service

pytestmark = pytest.mark.integration


async def _serve_one(url: str, port: int) -> tuple[Bus, list[tuple[str, int, bool]]]:
    """A bus on ``url``, once a message published on ``port`` reached its handler; with what
    the handler saw: (topic, the bus's MQTT version, whether it was store-then-acknowledge)."""
    topic = f"t-{uuid.uuid4().hex[:8]}/d/streaming_overdemand/list/post"
    handled: list[tuple[str, int, bool]] = []

    async def handler(topic: str, _payload: bytes, _receipt: Receipt) -> None:
        handled.append((topic, bus._version, bus.lossless))

    bus = Bus(url, [topic], handler, session_expiry_s=60)
    stop = asyncio.Event()
    task = asyncio.create_task(bus.run(stop))
    try:
        await asyncio.wait_for(bus.connected.wait(), 30)
        device = LiteClient(f"dev-{uuid.uuid4().hex[:8]}", lambda *_: None)
        await device.connect("127.0.0.1", port)
        device.publish(topic, b"{}", qos=1)
        await wait_for(lambda: [h[0] for h in handled] == [topic], 10.0, "the message")
        device.close()
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 30)
    return bus, handled


async def test_falls_back_to_311_on_a_broker_without_mqtt_5() -> None:
    port = free_port()
    async with EmbeddedBroker(port):
        _, handled = await _serve_one(f"mqtt://127.0.0.1:{port}", port)
    # acknowledged on receipt there (said in the log, not hidden)
    assert [(version, lossless) for _, version, lossless in handled] == [(MQTT_311, False)]


async def test_stays_on_mqtt_5_with_mosquitto() -> None:
    if not port_open(1883):
        missing_service("no Mosquitto on 127.0.0.1:1883")
    bus, handled = await _serve_one("mqtt://127.0.0.1:1883", 1883)
    assert [(version, lossless) for _, version, lossless in handled] == [(MQTT_5, True)]
    assert bus._version == MQTT_5  # spoken once: kept
