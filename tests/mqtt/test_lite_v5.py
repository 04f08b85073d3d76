"""MQTT 5 on the minimal client: the wire bytes without a broker, then sessions on a private
Mosquitto (a session kept for a killed client, taken over by another, with its messages)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from gridguard.mqtt.lite import (
    MQTT_5,
    LiteClient,
    LiteMqttError,
    Publication,
    connect_packet,
    disconnect_packet,
    publish_packet,
)
from gridguard.testing.mosquitto import MosquittoProcess
from gridguard.testing.wait import wait_for
from tests.mqtt.test_lite import FakeTransport


class AbortableTransport(FakeTransport):
    def __init__(self) -> None:
        super().__init__()
        self.aborted = False

    def abort(self) -> None:
        self.aborted = True


@pytest.mark.unit
def test_connect_v5_carries_expiry_receive_maximum_and_a_delayed_will() -> None:
    packet = connect_packet(
        "c1",
        keepalive_s=60,
        username=None,
        password=None,
        version=MQTT_5,
        clean_start=False,
        session_expiry_s=300,
        receive_maximum=65535,
        will=Publication("w/t", b"gone", qos=1, retain=True),
        will_delay_s=5,
    )
    body = packet[2:]
    assert body[:7] == b"\x00\x04MQTT\x05"
    assert body[7] == 0x04 | 0x08 | 0x20  # will, will QoS 1, will retain; not clean
    properties = b"\x11\x00\x00\x01\x2c" + b"\x21\xff\xff"
    assert body[10:] == (
        bytes([len(properties)]) + properties + b"\x00\x02c1"
        + b"\x05\x18\x00\x00\x00\x05" + b"\x00\x03w/t" + b"\x00\x04gone"
    )  # fmt: skip


@pytest.mark.unit
def test_connect_311_is_unchanged_and_a_bad_version_is_refused() -> None:
    packet = connect_packet("c1", keepalive_s=60, username=None, password=None)
    assert packet == b"\x10\x0e\x00\x04MQTT\x04\x02\x00\x3c\x00\x02c1"
    with pytest.raises(ValueError, match="version 3"):
        connect_packet("c1", keepalive_s=60, username=None, password=None, version=3)


@pytest.mark.unit
def test_disconnect_v5_can_end_the_session() -> None:
    assert disconnect_packet(MQTT_5, session_expiry_s=0) == b"\xe0\x07\x00\x05\x11\x00\x00\x00\x00"
    assert disconnect_packet(MQTT_5) == b"\xe0\x00"
    assert disconnect_packet(4, session_expiry_s=0) == b"\xe0\x00"


def _v5_publish(topic: str, payload: bytes, packet_id: int, *, dup: bool = False) -> bytes:
    """A PUBLISH as a broker sends it, with a property (message expiry) to skip."""
    properties = b"\x05\x02\x00\x00\x00\x3c"
    body = len(topic).to_bytes(2, "big") + topic.encode() + packet_id.to_bytes(2, "big")
    body += properties + payload
    return bytes([0x32 | (0x08 if dup else 0), len(body)]) + body


@pytest.mark.unit
def test_manual_ack_waits_for_the_owner_and_properties_are_skipped() -> None:
    seen: list[tuple[str, bytes, int, bool]] = []
    client = LiteClient(
        "unit",
        lambda c, t, p: seen.append((t, p, c.packet_id, c.dup)),
        version=MQTT_5,
        manual_ack=True,
    )
    transport = FakeTransport()
    client.connection_made(transport)
    client.data_received(_v5_publish("a/b", b"one", 7) + _v5_publish("a/b", b"two", 8, dup=True))
    assert seen == [("a/b", b"one", 7, False), ("a/b", b"two", 8, True)]
    assert transport.written == []  # nothing acknowledged before the owner says so
    assert client.unacked_in == 2
    client.ack([7, 8])
    assert transport.written == [b"\x40\x02\x00\x07\x40\x02\x00\x08"]
    assert client.unacked_in == 0


@pytest.mark.unit
def test_outgoing_v5_publish_has_an_empty_property_list() -> None:
    packet = publish_packet("t", b"x", qos=1, retain=False, packet_id=1, version=MQTT_5)
    assert packet == b"\x32\x07\x00\x01t\x00\x01\x00x"


@pytest.mark.unit
def test_a_broker_disconnect_ends_the_session_with_its_reason() -> None:
    client = LiteClient("unit", lambda *_: None, version=MQTT_5)
    client.closed = asyncio.new_event_loop().create_future()
    transport = AbortableTransport()
    client.connection_made(transport)
    client.data_received(b"\xe0\x01\x8e")
    assert transport.aborted
    error = client.closed.exception()
    assert isinstance(error, LiteMqttError)
    assert (error.code, str(error)) == (0x8E, "the broker disconnected: session taken over")


@pytest.mark.unit
def test_malformed_properties_close_the_connection() -> None:
    client = LiteClient("unit", lambda *_: None, version=MQTT_5)
    client.closed = asyncio.new_event_loop().create_future()
    client.connection_made(AbortableTransport())
    client.data_received(b"\x30\x05\x00\x01t\x09x")  # properties "9 bytes long" in a 5-byte packet
    assert "malformed" in str(client.closed.exception())


@pytest.mark.integration
async def test_a_killed_members_unacknowledged_share_goes_to_who_takes_its_session(
    broker: MosquittoProcess,
) -> None:
    """Mosquitto 2.0 keeps a dead MQTT 5 member's unacknowledged messages and its share of
    what comes after; a client taking the session over gets both, marked as sent before."""
    group, name = f"g{uuid.uuid4().hex[:6]}", f"dead-{uuid.uuid4().hex[:6]}"

    async def resume(client: LiteClient, subscriptions: list[tuple[str, int]]) -> None:
        await client.connect(
            "127.0.0.1",
            broker.port,
            subscriptions=subscriptions,
            clean_start=False,
            session_expiry_s=60,
            receive_maximum=1000,
        )

    first: list[bytes] = []
    dead = LiteClient(name, lambda _c, _t, p: first.append(p), version=MQTT_5, manual_ack=True)
    await resume(dead, [(f"$share/{group}/s/#", 1)])
    other: list[bytes] = []
    live = LiteClient(f"live-{name}", lambda _c, _t, p: other.append(p), version=MQTT_5)
    await live.connect("127.0.0.1", broker.port, subscriptions=[(f"$share/{group}/s/#", 1)])
    device = LiteClient(f"dev-{name}", lambda *_: None)
    await device.connect("127.0.0.1", broker.port)
    device.publish_many([Publication(f"s/{i}", str(i).encode(), qos=1) for i in range(100)])
    await wait_for(lambda: len(first) + len(other) == 100, 10.0, "the first hundred")
    dead.abort()  # killed: nothing acknowledged
    await wait_for(lambda: not dead.connected, 5.0, "the kill")
    device.publish_many([Publication(f"s/{i}", str(i).encode(), qos=1) for i in range(100, 200)])
    await wait_for(lambda: device.unacked == 0, 10.0, "the broker taking the second hundred")
    taken: list[tuple[bytes, bool]] = []
    heir = LiteClient(name, lambda c, _t, p: taken.append((p, c.dup)), version=MQTT_5)
    await resume(heir, [])
    assert heir.session_present
    await wait_for(lambda: len(other) + len(taken) >= 200, 10.0, "every message once")
    assert sorted(int(p) for p in other + [p for p, _ in taken]) == list(range(200))
    assert set(first) <= {p for p, dup in taken if dup}  # the dead one had these: marked
    for client in (heir, live, device):
        client.close(session_expiry_s=0)
