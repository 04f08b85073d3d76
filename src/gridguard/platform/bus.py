"""The platform's one MQTT connection: subscribe to every configured prefix, publish commands.

MQTT 5 with a clean start: the platform needs no backlog (results of requests that are gone
are recorded from the retry or not at all; list/post is retained). On request MQTT 3.1.1 with
a clean session, for a broker without MQTT 5 (the demo's embedded amqtt). Reconnects with
jittered backoff; TCP_NODELAY as everywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import aiomqtt

from gridguard.mqtt.session import NODELAY_OPTION, parse_mqtt_url

log = logging.getLogger("gridguard.platform.bus")

Handler = Callable[[str, bytes], Awaitable[None]]


class Bus:
    """Connect, subscribe, hand each message to ``handler`` in arrival order."""

    def __init__(
        self,
        url: str,
        topics: list[str],
        handler: Handler,
        *,
        client_id: str | None = None,
        mqtt_v5: bool = True,
    ) -> None:
        self._address = parse_mqtt_url(url)
        self._topics = topics
        self._handler = handler
        self._client_id = client_id or f"gridguard-platform-{uuid.uuid4().hex[:12]}"
        self._mqtt_v5 = mqtt_v5
        self._client: aiomqtt.Client | None = None
        self.connected = asyncio.Event()

    def _new_client(self) -> aiomqtt.Client:
        a = self._address
        version: dict[str, Any] = (
            {"protocol": aiomqtt.ProtocolVersion.V5, "clean_start": True}
            if self._mqtt_v5
            else {"protocol": aiomqtt.ProtocolVersion.V311, "clean_session": True}
        )
        return aiomqtt.Client(
            a.host,
            a.port,
            username=a.username,
            password=a.password,
            identifier=self._client_id,
            socket_options=[NODELAY_OPTION],
            tls_params=aiomqtt.TLSParameters() if a.tls else None,
            max_inflight_messages=100,
            **version,
        )

    async def publish(self, topic: str, payload: bytes) -> None:
        client = self._client
        if client is None or not self.connected.is_set():
            raise ConnectionError(f"not connected to {self._address.host}:{self._address.port}")
        try:
            await client.publish(topic, payload, qos=1)
        except aiomqtt.MqttError as exc:
            raise ConnectionError(str(exc)) from exc

    async def run(self, stop: asyncio.Event) -> None:
        backoff_s = 0.5
        while not stop.is_set():
            try:
                await self._session(stop)
                backoff_s = 0.5
            except aiomqtt.MqttError as exc:
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
        async with self._new_client() as client:
            client.pending_calls_threshold = 10_000
            await client.subscribe([(t, 1) for t in self._topics])
            self._client = client
            self.connected.set()
            log.info("MQTT connected to %s:%d", self._address.host, self._address.port)
            reader = asyncio.create_task(self._read(client), name="platform-mqtt-reader")
            waiter = asyncio.create_task(stop.wait(), name="platform-mqtt-stop")
            await asyncio.wait({reader, waiter}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            if not reader.done():
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader
                return
            reader.result()  # re-raises the MqttError that ended the session

    async def _read(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            payload = message.payload if isinstance(message.payload, bytes) else b""
            try:
                await self._handler(message.topic.value, payload)
            except Exception:
                log.exception("handling %s failed", message.topic.value)
