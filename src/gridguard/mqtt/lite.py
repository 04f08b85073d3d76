"""A minimal MQTT 3.1.1 / 5 client on an ``asyncio.Protocol``, for holding thousands of sessions.

Made for the fleet simulator, which keeps 10,000 connections in one process: the libraries
measured by ``bench/mqtt_clients.py`` cost 13-50 KiB per connection (a stream reader, a task
or three and their futures each) and up to 190 us of CPU per received message; this client
costs a socket, one object with slots and a timer. The platform's bus uses it as well (its
status stream is thousands of messages a second). The edge agent keeps aiomqtt, which it
needs for persistent sessions and acknowledging after the commit.

What it does: CONNECT as MQTT 3.1.1 (``version=4``, the default) or MQTT 5 (``version=5``), a
clean or a resumed session (MQTT 5: with a session expiry interval and a receive maximum), a
will, user name and password, TLS through an ``SSLContext``; SUBSCRIBE and UNSUBSCRIBE; PUBLISH
at QoS 0 and 1 (fire and forget: the PUBACK is counted, a lost connection loses what was
unacknowledged); receiving QoS 0 and 1, the PUBACK sent after the handler ran or, with
``manual_ack``, when the owner calls :meth:`LiteClient.ack` (after it stored the message: a
resumed session then gets again whatever was not acknowledged); keepalive by PINGREQ when idle,
and closing a connection the broker stopped answering. MQTT 5 properties the broker sends are
skipped, except the CONNACK's session-present flag and a DISCONNECT's reason code. What it does
not: QoS 2, sending its own redelivery, topic aliases, AUTH. The handler runs in
``data_received`` and must not block.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple, cast

CONNECT, CONNACK, PUBLISH, PUBACK = 1, 2, 3, 4
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK = 8, 9, 10, 11
PINGREQ, PINGRESP, DISCONNECT = 12, 13, 14
PINGREQ_PACKET = bytes([PINGREQ << 4, 0])
DISCONNECT_PACKET = bytes([DISCONNECT << 4, 0])
MAX_REMAINING = 268_435_455
MQTT_311, MQTT_5 = 4, 5
SESSION_EXPIRY, RECEIVE_MAXIMUM, WILL_DELAY = 0x11, 0x21, 0x18  # MQTT 5 property identifiers
CONNACK_REASONS = {
    1: "unacceptable protocol version",
    2: "client identifier rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorised",
    0x80: "unspecified error",
    0x81: "malformed packet",
    0x82: "protocol error",
    0x84: "unsupported protocol version",
    0x85: "client identifier not valid",
    0x86: "bad user name or password",
    0x87: "not authorised",
    0x88: "server unavailable",
    0x89: "server busy",
    0x8A: "banned",
    0x97: "quota exceeded",
    0x9F: "connection rate exceeded",
}
UNSUPPORTED_VERSION = frozenset({1, 0x84})
"""CONNACK codes saying the broker does not speak the version asked for (3.1.1's and 5's)."""
DISCONNECT_REASONS = {
    0x00: "normal disconnection",
    0x80: "unspecified error",
    0x81: "malformed packet",
    0x82: "protocol error",
    0x87: "not authorised",
    0x89: "server busy",
    0x8B: "server shutting down",
    0x8D: "keep alive timeout",
    0x8E: "session taken over",
    0x93: "receive maximum exceeded",
    0x97: "quota exceeded",
    0x9C: "use another server",
}

MessageHandler = Callable[["LiteClient", str, bytes], None]
"""(client, topic, payload): called for every received PUBLISH."""


class LiteMqttError(Exception):
    """The connection failed, was refused or was lost.

    ``code``: the broker's CONNACK or DISCONNECT reason code when it gave one, else None.
    ``unanswered``: a CONNECT the broker took the connection for and never answered (closed or
    timed out without a CONNACK), as brokers that do not know the protocol version may do."""

    def __init__(self, message: str, *, code: int | None = None, unanswered: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.unanswered = unanswered


class Publication(NamedTuple):
    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False


def _check_granted(topics: Sequence[tuple[str, int]], suback: bytes, version: int) -> None:
    codes = suback[_after_properties(suback, 2) if version == MQTT_5 else 2 :]
    refused = [t for (t, _), code in zip(topics, codes, strict=False) if code >= 0x80]
    if refused:
        raise LiteMqttError(f"subscription refused for {', '.join(refused)}")


def _read_varint(buffer: bytes, index: int) -> tuple[int, int]:
    """(value, index after it) of the variable byte integer at ``index``."""
    value, multiplier = 0, 1
    for _ in range(4):
        if index >= len(buffer):
            raise LiteMqttError("malformed packet: variable byte integer cut short")
        digit = buffer[index]
        index += 1
        value += (digit & 0x7F) * multiplier
        if not digit & 0x80:
            return value, index
        multiplier *= 128
    raise LiteMqttError("malformed packet: variable byte integer over 4 bytes")


def _after_properties(body: bytes, index: int) -> int:
    """The index after the MQTT 5 properties that start at ``index``."""
    length, start = _read_varint(body, index)
    if start + length > len(body):
        raise LiteMqttError("malformed packet: properties longer than the packet")
    return start + length


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


def publish_packet(
    topic: str, payload: bytes, *, qos: int, retain: bool, packet_id: int, version: int = MQTT_311
) -> bytes:
    """A PUBLISH packet (``packet_id`` ignored at QoS 0; MQTT 5: no properties)."""
    first = (PUBLISH << 4) | (qos << 1) | int(retain)
    pid = packet_id.to_bytes(2, "big") if qos else b""
    properties = b"\x00" if version == MQTT_5 else b""
    return _packet(first, _text(topic) + pid + properties + payload)


def connect_packet(
    client_id: str,
    *,
    keepalive_s: int,
    username: str | None,
    password: str | None,
    version: int = MQTT_311,
    clean_start: bool = True,
    session_expiry_s: int = 0,
    receive_maximum: int | None = None,
    will: Publication | None = None,
    will_delay_s: int = 0,
) -> bytes:
    """CONNECT; ``session_expiry_s``, ``receive_maximum`` and ``will_delay_s`` are MQTT 5 only
    (3.1.1 keeps a session that is not clean until the client connects clean again). A will
    with a delay is not sent when another connection takes the session over within it."""
    if version not in {MQTT_311, MQTT_5}:
        raise ValueError(f"version {version}: 4 (MQTT 3.1.1) or 5 (MQTT 5)")
    flags = (0x02 if clean_start else 0) | (0x80 if username is not None else 0)
    flags |= 0x40 if password is not None else 0
    if will is not None:
        flags |= 0x04 | (will.qos << 3) | (0x20 if will.retain else 0)
    body = _text("MQTT") + bytes([version, flags]) + keepalive_s.to_bytes(2, "big")
    if version == MQTT_5:
        properties = b""
        if session_expiry_s:
            properties += bytes([SESSION_EXPIRY]) + session_expiry_s.to_bytes(4, "big")
        if receive_maximum is not None:
            properties += bytes([RECEIVE_MAXIMUM]) + receive_maximum.to_bytes(2, "big")
        body += _varint(len(properties)) + properties
    body += _text(client_id)
    if will is not None:
        will_properties = b""
        if version == MQTT_5:
            delay = bytes([WILL_DELAY]) + will_delay_s.to_bytes(4, "big") if will_delay_s else b""
            will_properties = _varint(len(delay)) + delay
        body += will_properties + _text(will.topic) + _text(will.payload)
    if username is not None:
        body += _text(username)
    if password is not None:
        body += _text(password)
    return _packet(CONNECT << 4, body)


def disconnect_packet(version: int, *, session_expiry_s: int | None = None) -> bytes:
    """DISCONNECT (MQTT 5: normal, optionally ending the session: ``session_expiry_s=0``)."""
    if version != MQTT_5 or session_expiry_s is None:
        return DISCONNECT_PACKET
    expiry = bytes([SESSION_EXPIRY]) + session_expiry_s.to_bytes(4, "big")
    return _packet(DISCONNECT << 4, b"\x00" + _varint(len(expiry)) + expiry)


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
        "_manual_ack",
        "_next_id",
        "_timer",
        "_transport",
        "_waiters",
        "client_id",
        "closed",
        "dup",
        "on_message",
        "packet_id",
        "session_present",
        "unacked",
        "unacked_in",
        "version",
    )

    def __init__(
        self,
        client_id: str,
        on_message: MessageHandler,
        *,
        keepalive_s: int = 60,
        version: int = MQTT_311,
        manual_ack: bool = False,
    ) -> None:
        if version not in {MQTT_311, MQTT_5}:
            raise ValueError(f"version {version}: 4 (MQTT 3.1.1) or 5 (MQTT 5)")
        self.client_id = client_id
        self.on_message = on_message
        self.version = version
        self._keepalive_s = keepalive_s
        self._manual_ack = manual_ack
        self._buffer = b""
        self._by_us = False
        self._transport: asyncio.Transport | None = None
        self._waiters: dict[int, asyncio.Future[bytes]] = {}
        self._next_id = 0
        self._timer: asyncio.TimerHandle | None = None
        self._last_in = self._last_out = 0.0
        self.unacked = 0
        """QoS 1 messages published and not yet acknowledged by the broker."""
        self.unacked_in = 0
        """With ``manual_ack``: QoS 1 messages received and not yet acknowledged by us."""
        self.packet_id = 0
        """Inside ``on_message``: the message's packet id (0 at QoS 0), for :meth:`ack`."""
        self.dup = False
        """Inside ``on_message``: the broker says it may have sent this message before."""
        self.session_present = False
        """From the CONNACK: the broker resumed a session it kept for this client id."""
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
        clean_start: bool = True,
        session_expiry_s: int = 0,
        receive_maximum: int | None = None,
        will: Publication | None = None,
        will_delay_s: int = 0,
    ) -> None:
        """Connect, subscribe to ``subscriptions`` and publish ``announce``, in one write.

        The broker handles a connection's packets in order, so nothing published after the
        announcement can miss the subscriptions, and a whole session start costs one send and
        one round trip. Waits for the CONNACK (and the SUBACK); LiteMqttError if refused
        (its ``code`` is the broker's reason).
        """
        loop = asyncio.get_running_loop()
        self.closed = loop.create_future()
        connack = self._waiter(-1)
        login = connect_packet(
            self.client_id,
            keepalive_s=self._keepalive_s,
            username=username,
            password=password,
            version=self.version,
            clean_start=clean_start,
            session_expiry_s=session_expiry_s,
            receive_maximum=receive_maximum,
            will=will,
            will_delay_s=will_delay_s,
        )
        subscribe, suback = self._subscribe_packet(subscriptions) if subscriptions else (b"", None)
        publications = [self._publish_packet(*p) for p in announce]
        sent = answered = False
        try:
            async with asyncio.timeout(timeout_s):
                await loop.create_connection(lambda: self, host, port, ssl=ssl_context)
                self._write(b"".join([login, subscribe, *publications]))
                sent = True
                body = await connack
                answered = True
                if body[1:2] == b"\x00" and suback is not None:
                    _check_granted(subscriptions, await suback, self.version)
        except (OSError, TimeoutError) as exc:
            self.abort()
            unanswered = sent and not answered
            why = "no CONNACK" if unanswered else str(exc) or "timed out"
            raise LiteMqttError(f"connect to {host}:{port}: {why}", unanswered=unanswered) from exc
        except LiteMqttError as exc:
            if self.closed.done() and not self.closed.cancelled():
                self.closed.exception()  # the same error, raised here: not "never retrieved"
            if sent and not answered and exc.code is None:
                raise LiteMqttError(f"{exc} (no CONNACK)", unanswered=True) from exc
            raise
        finally:
            for waiter in (connack, suback):
                if waiter is not None and not waiter.done():
                    waiter.cancel()  # nobody will await it: no "exception never retrieved"
        if len(body) < 2 or body[1] != 0:
            self.abort()
            code = body[1] if len(body) > 1 else -1
            raise LiteMqttError(f"connection refused: {CONNACK_REASONS.get(code, code)}", code=code)
        self.session_present = bool(body[0] & 0x01)
        self._arm_keepalive()

    async def subscribe(self, topics: Sequence[tuple[str, int]], timeout_s: float = 10.0) -> None:
        """Subscribe and wait for the SUBACK; LiteMqttError if the broker refused a filter."""
        packet, suback = self._subscribe_packet(topics)
        self._write(packet)
        async with asyncio.timeout(timeout_s):
            _check_granted(topics, await suback, self.version)

    async def unsubscribe(self, topics: Sequence[str], timeout_s: float = 10.0) -> None:
        """Unsubscribe and wait for the UNSUBACK (after it the broker routes nothing more to
        this session through those filters)."""
        packet_id = self._packet_id()
        properties = b"\x00" if self.version == MQTT_5 else b""
        body = packet_id.to_bytes(2, "big") + properties + b"".join(_text(t) for t in topics)
        unsuback = self._waiter(packet_id)
        self._write(_packet((UNSUBSCRIBE << 4) | 0x02, body))
        async with asyncio.timeout(timeout_s):
            await unsuback

    def ack(self, packet_ids: Sequence[int]) -> None:
        """With ``manual_ack``: acknowledge received QoS 1 messages (one write for all).

        A no-op once the connection is gone: the packet ids were this connection's, and the
        broker sends the messages again to whoever resumes the session."""
        packet_ids = [p for p in packet_ids if p]
        if not packet_ids or not self.connected:
            return
        self.unacked_in = max(0, self.unacked_in - len(packet_ids))
        self._write(b"".join(bytes([PUBACK << 4, 2]) + p.to_bytes(2, "big") for p in packet_ids))

    def publish(self, topic: str, payload: bytes, *, qos: int = 0, retain: bool = False) -> None:
        """Queue a PUBLISH on the socket (QoS 0 or 1); LiteMqttError when not connected."""
        self._write(self._publish_packet(topic, payload, qos, retain))

    def publish_many(self, publications: Sequence[Publication]) -> None:
        """Several PUBLISH packets in one write (one system call)."""
        self._write(b"".join(self._publish_packet(*p) for p in publications))

    def close(self, *, session_expiry_s: int | None = None) -> None:
        """Send DISCONNECT and close (the broker drops the will, if any). MQTT 5:
        ``session_expiry_s=0`` also ends the session the broker kept for this client id."""
        self._by_us = True
        if self._transport is not None and not self._transport.is_closing():
            packet = disconnect_packet(self.version, session_expiry_s=session_expiry_s)
            self._transport.write(packet)
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
        elif kind in {SUBACK, UNSUBACK}:
            self._resolve(int.from_bytes(body[:2], "big"), body)
        elif kind == DISCONNECT:  # MQTT 5: the broker says why it ends the session
            code = body[0] if body else 0
            reason = DISCONNECT_REASONS.get(code, f"reason 0x{code:02x}")
            raise LiteMqttError(f"the broker disconnected: {reason}", code=code)
        elif kind != PINGRESP:
            raise LiteMqttError(f"unexpected packet type {kind} from the broker")

    def _received(self, first: int, body: bytes) -> None:
        qos = (first >> 1) & 0x03
        if qos > 1:
            raise LiteMqttError("QoS 2 is not supported by this client")
        topic_end = 2 + int.from_bytes(body[:2], "big")
        topic = body[2:topic_end].decode("utf-8", "replace")
        payload_start = topic_end + (2 if qos else 0)
        if self.version == MQTT_5:
            payload_start = _after_properties(body, payload_start)
        packet_id = int.from_bytes(body[topic_end : topic_end + 2], "big") if qos else 0
        self.packet_id, self.dup = packet_id, bool(first & 0x08)
        if qos and self._manual_ack:
            self.unacked_in += 1
        self.on_message(self, topic, body[payload_start:])
        if qos and not self._manual_ack:
            self._write(bytes([PUBACK << 4, 2]) + body[topic_end : topic_end + 2])

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
        return publish_packet(
            topic, payload, qos=qos, retain=retain, packet_id=packet_id, version=self.version
        )

    def _subscribe_packet(
        self, topics: Sequence[tuple[str, int]]
    ) -> tuple[bytes, asyncio.Future[bytes]]:
        packet_id = self._packet_id()
        properties = b"\x00" if self.version == MQTT_5 else b""
        body = packet_id.to_bytes(2, "big") + properties
        body += b"".join(_text(t) + bytes([q]) for t, q in topics)
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
