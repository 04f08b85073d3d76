"""The minimal MQTT client: wire encoding without a broker, sessions on a private Mosquitto."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from gridguard.mqtt.lite import (
    LiteClient,
    LiteMqttError,
    Publication,
    _varint,
    publish_packet,
)
from gridguard.ports import free_port
from gridguard.testing.mosquitto import MosquittoProcess


@pytest.mark.unit
@pytest.mark.parametrize(
    ("length", "encoded"),
    [
        (0, b"\x00"),
        (127, b"\x7f"),
        (128, b"\x80\x01"),
        (16383, b"\xff\x7f"),
        (16384, b"\x80\x80\x01"),
        (268_435_455, b"\xff\xff\xff\x7f"),
    ],
    ids=["zero", "one-byte-max", "two-bytes-min", "two-bytes-max", "three-bytes-min", "max"],
)
def test_remaining_length_encoding(length: int, encoded: bytes) -> None:
    """MQTT 3.1.1 section 2.2.3: seven bits per byte, continuation bit first."""
    assert _varint(length) == encoded


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written.append(bytes(data))

    def is_closing(self) -> bool:
        return False


@pytest.mark.unit
def test_packets_split_and_joined_across_reads() -> None:
    """A PUBLISH fed byte by byte, then two in one read: each handled once, each acknowledged."""
    received: list[tuple[str, bytes]] = []
    client = LiteClient("unit", lambda _c, topic, payload: received.append((topic, payload)))
    transport = FakeTransport()
    client.connection_made(transport)
    packet = publish_packet("a/b", b"x" * 300, qos=1, retain=False, packet_id=7)
    for index in range(len(packet)):
        client.data_received(packet[index : index + 1])
    client.data_received(packet + publish_packet("c", b"", qos=0, retain=False, packet_id=0))
    assert received == [("a/b", b"x" * 300), ("a/b", b"x" * 300), ("c", b"")]
    assert transport.written == [b"\x40\x02\x00\x07"] * 2  # PUBACK for packet id 7, twice


async def connected(
    broker: MosquittoProcess, inbox: asyncio.Queue[tuple[str, bytes]], **kwargs: object
) -> LiteClient:
    client = LiteClient(f"t-{uuid.uuid4().hex[:8]}", lambda _c, t, p: inbox.put_nowait((t, p)))
    await client.connect("127.0.0.1", broker.port, **kwargs)  # type: ignore[arg-type]
    return client


@pytest.mark.integration
async def test_publish_and_receive_at_qos_1(broker: MosquittoProcess) -> None:
    """One client's QoS 1 message reaches another's subscription; the PUBACK is counted."""
    topic = f"test/lite/{uuid.uuid4().hex}"
    inbox: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
    receiver = await connected(broker, inbox, subscriptions=[(topic, 1)])
    sender = await connected(broker, asyncio.Queue())
    sender.publish(topic, b"hello", qos=1)
    async with asyncio.timeout(5):
        assert await inbox.get() == (topic, b"hello")
        while sender.unacked:
            await asyncio.sleep(0.01)
    receiver.close()
    sender.close()


@pytest.mark.integration
async def test_announcement_is_retained_for_late_subscribers(broker: MosquittoProcess) -> None:
    """What connect() announces goes out after the subscriptions, retained as asked."""
    topic = f"test/lite/{uuid.uuid4().hex}"
    announcer = await connected(
        broker, asyncio.Queue(), announce=[Publication(topic, b"state", qos=1, retain=True)]
    )
    inbox: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
    late = await connected(broker, inbox, subscriptions=[(topic, 1)])
    async with asyncio.timeout(5):
        assert await inbox.get() == (topic, b"state")
    announcer.close()
    late.close()


@pytest.mark.integration
async def test_refused_and_unreachable_brokers_raise(tmp_path: Path) -> None:
    """A CONNACK refusal names the reason; a closed port is a LiteMqttError too."""
    locked = MosquittoProcess(tmp_path / "locked", listener="allow_anonymous false\n")
    locked.start()
    try:
        with pytest.raises(LiteMqttError, match="not authorised"):
            await LiteClient("t-refused", lambda *_: None).connect(
                "127.0.0.1", locked.port, subscriptions=[("test/lite/refused", 1)]
            )
    finally:
        locked.remove()
    with pytest.raises(LiteMqttError, match="connect to"):
        await LiteClient("t-nobody", lambda *_: None).connect("127.0.0.1", free_port())


@pytest.mark.integration
async def test_lost_connection_resolves_closed(broker: MosquittoProcess) -> None:
    """close() ends the session cleanly; publishing afterwards is refused."""
    client = await connected(broker, asyncio.Queue())
    client.close()
    assert client.closed is not None
    async with asyncio.timeout(5):
        await client.closed
    with pytest.raises(LiteMqttError, match="not connected"):
        client.publish("x", b"")


@pytest.mark.integration
async def test_broker_going_away_is_an_error_not_a_close(tmp_path: Path) -> None:
    """When the broker ends the session, closed carries an exception (so owners reconnect)."""
    own = MosquittoProcess(tmp_path / "own")
    own.start()
    try:
        client = await connected(own, asyncio.Queue())
        own.stop()
        assert client.closed is not None
        with pytest.raises(LiteMqttError, match="broker closed"):
            await asyncio.wait_for(client.closed, 10)
    finally:
        own.remove()
