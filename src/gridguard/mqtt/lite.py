"""A minimal MQTT 3.1.1 client on an ``asyncio.Protocol``, for holding thousands of sessions.

Made for the fleet simulator, which keeps 10,000 connections in one process: the libraries
measured by ``bench/mqtt_clients.py`` cost 13-50 KiB per connection (a stream reader, a task
or three and their futures each) and up to 190 us of CPU per received message; this client
costs a socket, one object with slots and a timer. The platform's bus uses it as well (its
status stream is thousands of messages a second). The edge agent keeps aiomqtt, which it
needs for persistent sessions and acknowledging after the commit.

What it does: CONNECT (clean session, user name and password, TLS through an ``SSLContext``),
SUBSCRIBE, PUBLISH at QoS 0 and 1 (fire and forget: the PUBACK is counted, a lost connection
loses what was unacknowledged), receiving QoS 0 and 1 (PUBACK sent after the handler ran),
keepalive by PINGREQ when idle, and closing a connection the broker stopped answering. What it
does not: QoS 2, persistent sessions, redelivery, MQTT 5. The handler runs in
``data_received`` and must not block.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple, cast

CONNECT, CONNACK, PUBLISH, PUBACK = 1, 2, 3, 4
SUBSCRIBE, SUBACK, PINGREQ, PINGRESP, DISCONNECT = 8, 9, 12, 13, 14
PINGREQ_PACKET = bytes([PINGREQ << 4, 0])
DISCONNECT_PACKET = bytes([DISCONNECT << 4, 0])
MAX_REMAINING = 268_435_455
CONNACK_REASONS = {
    1: "unacceptable protocol version",
    2: "client identifier rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorised",
}

MessageHandler = Callable[["LiteClient", str, bytes], None]
"""(client, topic, payload): called for every received PUBLISH."""


class LiteMqttError(Exception):
    """The connection failed, was refused or was lost."""


class Publication(NamedTuple):
    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False


def _check_granted(topics: Sequence[tuple[str, int]], suback: bytes) -> None:
    refused = [t for (t, _), code in zip(topics, suback[2:], strict=False) if code == 0x80]
    if refused:
        raise LiteMqttError(f"subscription refused for {', '.join(refused)}")


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        value, digit = divmod(value, 128)
        out.append(digit | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _text(value: str | bytes) -> bytes:
    raw = value.encode() if isinstance(value, str) else value
    return len(raw).to_bytes(2, "big") + raw


def _packet(first: int, body: bytes) -> bytes:
    if len(body) > MAX_REMAINING:
        raise ValueError(f"packet body of {len(body)} bytes: over MQTT's {MAX_REMAINING}")
    return bytes([first]) + _varint(len(body)) + body


def publish_packet(topic: str, payload: bytes, *, qos: int, retain: bool, packet_id: int) -> bytes:
    """A PUBLISH packet (``packet_id`` ignored at QoS 0)."""
    first = (PUBLISH << 4) | (qos << 1) | int(retain)
    pid = packet_id.to_bytes(2, "big") if qos else b""
    return _packet(first, _text(topic) + pid + payload)


def connect_packet(
    client_id: str, *, keepalive_s: int, username: str | None, password: str | None
) -> bytes:
    flags = 0x02 | (0x80 if username is not None else 0) | (0x40 if password is not None else 0)
    body = _text("MQTT") + bytes([4, flags]) + keepalive_s.to_bytes(2, "big") + _text(client_id)
    if username is not None:
        body += _text(username)
    if password is not None:
        body += _text(password)
    return _packet(CONNECT << 4, body)


def _parse_header(buffer: bytes, start: int) -> tuple[int, int, int] | None:
    """(first byte, body start, body end) of the packet at ``start``; None if incomplete."""
    end = len(buffer)
    index, multiplier, length = start + 1, 1, 0
    while True:
        if index >= end:
            return None
        digit = buffer[index]
        length += (digit & 0x7F) * multiplier
        index += 1
        if not digit & 0x80:
            break
        multiplier *= 128
        if multiplier > 128**3:
            raise LiteMqttError("malformed remaining length")
    if index + length > end:
        return None
    return buffer[start], index, index + length


class LiteClient(asyncio.Protocol):
    """One MQTT session. ``await connect()``, ``await subscribe()``, ``publish()``, ``close()``."""

    __slots__ = (
        "_buffer",
        "_by_us",
        "_keepalive_s",
        "_last_in",
        "_last_out",
        "_next_id",
        "_timer",
        "_transport",
        "_waiters",
        "client_id",
        "closed",
        "on_message",
        "unacked",
    )

    def __init__(
        self, client_id: str, on_message: MessageHandler, *, keepalive_s: int = 60
    ) -> None:
        self.client_id = client_id
        self.on_message = on_message
        self._keepalive_s = keepalive_s
        self._buffer = b""
        self._by_us = False
        self._transport: asyncio.Transport | None = None
        self._waiters: dict[int, asyncio.Future[bytes]] = {}
        self._next_id = 0
        self._timer: asyncio.TimerHandle | None = None
        self._last_in = self._last_out = 0.0
        self.unacked = 0
        """QoS 1 messages published and not yet acknowledged by the broker."""
        self.closed: asyncio.Future[None] | None = None
        """Done when the connection is gone: a result after close() or abort(), else an
        exception saying why (the broker closed it, it was lost, the broker went silent)."""

    async def connect(
        self,
        host: str,
        port: int,
        *,
        username: str | None = None,
        password: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        subscriptions: Sequence[tuple[str, int]] = (),
        announce: Sequence[Publication] = (),
        timeout_s: float = 10.0,
    ) -> None:
        """Connect, subscribe to ``subscriptions`` and publish ``announce``, in one write.

        The broker handles a connection's packets in order, so nothing published after the
        announcement can miss the subscriptions, and a whole session start costs one send and
        one round trip. Waits for the CONNACK (and the SUBACK); LiteMqttError if refused.
        """
        loop = asyncio.get_running_loop()
        self.closed = loop.create_future()
        connack = self._waiter(-1)
        login = connect_packet(
            self.client_id, keepalive_s=self._keepalive_s, username=username, password=password
        )
        subscribe, suback = self._subscribe_packet(subscriptions) if subscriptions else (b"", None)
        publications = [self._publish_packet(*p) for p in announce]
        try:
            async with asyncio.timeout(timeout_s):
                await loop.create_connection(lambda: self, host, port, ssl=ssl_context)
                self._write(b"".join([login, subscribe, *publications]))
                body = await connack
                if body[1:2] == b"\x00" and suback is not None:
                    _check_granted(subscriptions, await suback)
        except (OSError, TimeoutError) as exc:
            self.abort()
            raise LiteMqttError(f"connect to {host}:{port}: {exc or 'timed out'}") from exc
        except LiteMqttError:
            if self.closed.done() and not self.closed.cancelled():
                self.closed.exception()  # the same error, raised here: not "never retrieved"
            raise
        finally:
            for waiter in (connack, suback):
                if waiter is not None and not waiter.done():
                    waiter.cancel()  # nobody will await it: no "exception never retrieved"
        if len(body) < 2 or body[1] != 0:
            self.abort()
            code = body[1] if len(body) > 1 else -1
            raise LiteMqttError(f"connection refused: {CONNACK_REASONS.get(code, code)}")
        self._arm_keepalive()

    async def subscribe(self, topics: Sequence[tuple[str, int]], timeout_s: float = 10.0) -> None:
        """Subscribe and wait for the SUBACK; LiteMqttError if the broker refused a filter."""
        packet, suback = self._subscribe_packet(topics)
        self._write(packet)
        async with asyncio.timeout(timeout_s):
            _check_granted(topics, await suback)

    def publish(self, topic: str, payload: bytes, *, qos: int = 0, retain: bool = False) -> None:
        """Queue a PUBLISH on the socket (QoS 0 or 1); LiteMqttError when not connected."""
        self._write(self._publish_packet(topic, payload, qos, retain))

    def publish_many(self, publications: Sequence[Publication]) -> None:
        """Several PUBLISH packets in one write (one system call)."""
        self._write(b"".join(self._publish_packet(*p) for p in publications))

    def close(self) -> None:
        """Send DISCONNECT and close (the broker drops the will, if any)."""
        self._by_us = True
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(DISCONNECT_PACKET)
            self._transport.close()

    def abort(self) -> None:
        """Drop the connection at once (no DISCONNECT)."""
        self._by_us = True
        if self._transport is not None:
            self._transport.abort()

    @property
    def connected(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    # --- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream transport (uvloop's is one without subclassing asyncio.Transport)
        self._transport = cast("asyncio.Transport", transport)
        self._last_in = time.monotonic()

    def data_received(self, data: bytes) -> None:
        self._last_in = time.monotonic()
        buffer = self._buffer + data if self._buffer else data
        start = 0
        try:
            while (header := _parse_header(buffer, start)) is not None:
                first, body_start, end = header
                self._dispatch(first, buffer[body_start:end])
                start = end
        except LiteMqttError as exc:
            self._fail(exc)
            return
        self._buffer = buffer[start:] if start < len(buffer) else b""

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if exc is not None:
            error = LiteMqttError(f"connection lost: {exc}")
        else:
            error = LiteMqttError("closed" if self._by_us else "the broker closed the connection")
        for waiter in self._waiters.values():
            if not waiter.done():
                waiter.set_exception(error)
        self._waiters.clear()
        if self.closed is not None and not self.closed.done():
            if exc is None and self._by_us:
                self.closed.set_result(None)
            else:
                self.closed.set_exception(error)

    # --- inside -------------------------------------------------------------------------------

    def _dispatch(self, first: int, body: bytes) -> None:
        kind = first >> 4
        if kind == PUBLISH:
            self._received(first, body)
        elif kind == PUBACK:
            self.unacked = max(0, self.unacked - 1)
        elif kind == CONNACK:
            self._resolve(-1, body)
        elif kind == SUBACK:
            self._resolve(int.from_bytes(body[:2], "big"), body)
        elif kind != PINGRESP:
            raise LiteMqttError(f"unexpected packet type {kind} from the broker")

    def _received(self, first: int, body: bytes) -> None:
        qos = (first >> 1) & 0x03
        topic_end = 2 + int.from_bytes(body[:2], "big")
        topic = body[2:topic_end].decode("utf-8", "replace")
        payload_start = topic_end + (2 if qos else 0)
        self.on_message(self, topic, body[payload_start:])
        if qos == 1:
            self._write(bytes([PUBACK << 4, 2]) + body[topic_end:payload_start])
        elif qos:
            raise LiteMqttError("QoS 2 is not supported by this client")

    def _fail(self, exc: Exception) -> None:
        if self._transport is not None:
            self._transport.abort()
        if self.closed is not None and not self.closed.done():
            self.closed.set_exception(exc)

    def _write(self, data: bytes) -> None:
        if self._transport is None or self._transport.is_closing():
            raise LiteMqttError(f"{self.client_id}: not connected")
        self._transport.write(data)
        self._last_out = time.monotonic()

    def _publish_packet(self, topic: str, payload: bytes, qos: int, retain: bool) -> bytes:
        if qos not in {0, 1}:
            raise ValueError(f"qos {qos}: this client publishes at QoS 0 or 1")
        packet_id = self._packet_id() if qos else 0
        self.unacked += qos
        return publish_packet(topic, payload, qos=qos, retain=retain, packet_id=packet_id)

    def _subscribe_packet(
        self, topics: Sequence[tuple[str, int]]
    ) -> tuple[bytes, asyncio.Future[bytes]]:
        packet_id = self._packet_id()
        body = packet_id.to_bytes(2, "big") + b"".join(_text(t) + bytes([q]) for t, q in topics)
        return _packet((SUBSCRIBE << 4) | 0x02, body), self._waiter(packet_id)

    def _packet_id(self) -> int:
        self._next_id = self._next_id % 65535 + 1
        return self._next_id

    def _waiter(self, key: int) -> asyncio.Future[bytes]:
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._waiters[key] = future
        return future

    def _resolve(self, key: int, body: bytes) -> None:
        waiter = self._waiters.pop(key, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(body)

    def _arm_keepalive(self) -> None:
        if self._keepalive_s > 0:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self._keepalive_s / 2, self._keepalive)

    def _keepalive(self) -> None:
        """PINGREQ when idle for half the keepalive; abort when the broker is silent."""
        now = time.monotonic()
        if now - self._last_in > 1.5 * self._keepalive_s:
            self._fail(LiteMqttError("the broker stopped answering (keepalive)"))
            return
        if now - self._last_out >= self._keepalive_s / 2 and self.connected:
            self._write(PINGREQ_PACKET)
        self._arm_keepalive()
