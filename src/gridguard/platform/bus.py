"""The platform's one MQTT connection: subscribe to every configured prefix, publish commands.

On :class:`~gridguard.mqtt.lite.LiteClient` (MQTT 3.1.1, clean session): the platform needs no
backlog (results of requests that are gone are recorded from the retry or not at all; list/post
is retained), and a status stream of 5,000 messages/s is where a library's ~190 us of CPU per
received message (aiomqtt, measured by ``bench/mqtt_clients.py``) would cost a whole core.
Mosquitto serves ``$share/…`` subscriptions to 3.1.1 clients too. Reconnects with jittered
backoff; asyncio sets TCP_NODELAY on the socket.

Received messages go into two lanes, each handled in arrival order by its own task: status/post
(the volume, buffered by the telemetry writer) and everything else (results and list/post,
which write to the database), so a slow commit never holds up the status stream and the status
stream never delays a result.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
import ssl
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from gridguard.mqtt.lite import LiteClient, LiteMqttError
from gridguard.mqtt.session import parse_mqtt_url

log = logging.getLogger("gridguard.platform.bus")

Handler = Callable[[str, bytes], Awaitable[None]]
STATUS_SUFFIX = "/status/post"


class _Lane:
    """Messages handled one at a time, in arrival order, by one task."""

    def __init__(self, name: str, handler: Handler) -> None:
        self.name = name
        self._handler = handler
        self._queue: collections.deque[tuple[str, bytes]] = collections.deque()
        self._ready = asyncio.Event()

    def put(self, topic: str, payload: bytes) -> None:
        self._queue.append((topic, payload))
        self._ready.set()

    def __len__(self) -> int:
        return len(self._queue)

    async def run(self) -> None:
        while True:
            await self._ready.wait()
            self._ready.clear()
            while self._queue:
                topic, payload = self._queue.popleft()
                try:
                    await self._handler(topic, payload)
                except Exception:
                    log.exception("handling %s failed", topic)


class Bus:
    """Connect, subscribe, hand each message to ``handler`` (in arrival order per lane)."""

    def __init__(
        self, url: str, topics: list[str], handler: Handler, *, client_id: str | None = None
    ) -> None:
        self._address = parse_mqtt_url(url)
        self._topics = topics
        self._client_id = client_id or f"gridguard-platform-{uuid.uuid4().hex[:12]}"
        self._client: LiteClient | None = None
        self._status = _Lane("status", handler)
        self._control = _Lane("control", handler)
        self.connected = asyncio.Event()

    async def publish(self, topic: str, payload: bytes) -> None:
        """QoS 1; ConnectionError when the broker is away (the caller's retry covers a loss)."""
        client = self._client
        if client is None or not self.connected.is_set():
            raise ConnectionError(f"not connected to {self._address.host}:{self._address.port}")
        try:
            client.publish(topic, payload, qos=1)
        except LiteMqttError as exc:
            raise ConnectionError(str(exc)) from exc

    def _received(self, _client: LiteClient, topic: str, payload: bytes) -> None:
        lane = self._status if topic.endswith(STATUS_SUFFIX) else self._control
        lane.put(topic, payload)

    async def run(self, stop: asyncio.Event) -> None:
        lanes = [
            asyncio.create_task(lane.run(), name=f"platform-mqtt-{lane.name}")
            for lane in (self._status, self._control)
        ]
        try:
            await self._connect_loop(stop)
        finally:
            for lane in lanes:
                lane.cancel()
            for lane in lanes:
                with contextlib.suppress(asyncio.CancelledError):
                    await lane

    async def _connect_loop(self, stop: asyncio.Event) -> None:
        backoff_s = 0.5
        while not stop.is_set():
            try:
                await self._session(stop)
                backoff_s = 0.5
            except (LiteMqttError, OSError) as exc:
                log.warning("MQTT connection lost: %s; retrying in %.1f s", exc, backoff_s)
            finally:
                self.connected.clear()
                self._client = None
            if stop.is_set():
                return
            try:
                await asyncio.wait_for(stop.wait(), backoff_s * random.uniform(0.5, 1.0))  # noqa: S311
            except TimeoutError:
                backoff_s = min(backoff_s * 2, 30.0)

    async def _session(self, stop: asyncio.Event) -> None:
        a = self._address
        client = LiteClient(self._client_id, self._received, keepalive_s=60)
        await client.connect(
            a.host,
            a.port,
            username=a.username,
            password=a.password,
            ssl_context=ssl.create_default_context() if a.tls else None,
            subscriptions=[(t, 1) for t in self._topics],
        )
        self._client = client
        self.connected.set()
        log.info("MQTT connected to %s:%d", a.host, a.port)
        assert client.closed is not None
        waiter = asyncio.create_task(stop.wait(), name="platform-mqtt-stop")
        either: set[asyncio.Future[Any]] = {client.closed, waiter}
        try:
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if not client.closed.done():
            client.close()
            return
        client.closed.result()  # re-raises the LiteMqttError that ended the session
