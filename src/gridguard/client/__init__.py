"""SDK for platform developers: send a strategy command to an EMS and await its result.

    async with StrategyClient("mqtt://127.0.0.1:1883", scheme, "gg-demo-001") as ems:
        result = await ems.create({...})          # -> CreateResult, code 200 or 400
        strategies = (await ems.sync()).data      # -> list[StreamingOverDemand]

Results are matched to commands by ``reply`` == the command's ``mid`` (D2), so many commands
may be in flight at once.

Rulings: none owned.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Self

import aiomqtt

from gridguard.mqtt.session import NODELAY_OPTION, forwarding_queue, parse_mqtt_url
from gridguard.protocol import codec
from gridguard.protocol.models import (
    RESULT_MODELS,
    CreateResult,
    DeleteResult,
    ListPost,
    Result,
    SyncResult,
    UpdateAllResult,
    UpdateResult,
    message_type,
)
from gridguard.protocol.timefmt import now_ms
from gridguard.protocol.topics import COMMAND_OPS, TopicScheme, build_topic, parse_topic

LISTS_KEPT = 16
"""list/post reports kept for :meth:`StrategyClient.lists`; older ones are dropped."""


class CommandTimeoutError(TimeoutError):
    """No result arrived for a command within the timeout."""


class StrategyClient:
    """One platform-side MQTT connection talking to one EMS device."""

    def __init__(
        self,
        url: str,
        scheme: TopicScheme,
        device_uid: str,
        *,
        timeout_s: float = 10.0,
        client_id: str | None = None,
        ca_file: Path | None = None,
    ) -> None:
        """``url`` is ``mqtt://[user:pw@]host[:port]`` or ``mqtts://…`` (TLS, verified against
        ``ca_file`` or the system's CAs)."""
        address = parse_mqtt_url(url)
        tls = (
            aiomqtt.TLSParameters(ca_certs=str(ca_file) if ca_file else None)
            if address.tls or ca_file
            else None
        )
        self._scheme = scheme
        self._device = device_uid
        self._timeout_s = timeout_s
        self._client = aiomqtt.Client(
            address.host,
            address.port,
            username=address.username,
            password=address.password,
            identifier=client_id or f"gridguard-sdk-{uuid.uuid4().hex[:12]}",
            socket_options=[NODELAY_OPTION],
            tls_params=tls,
            queue_type=forwarding_queue(self._on_message),
        )
        self._client.pending_calls_threshold = 10_000  # many commands may be in flight
        self._pending: dict[str, asyncio.Future[bytes]] = {}
        self._lists: asyncio.Queue[bytes] = asyncio.Queue(maxsize=LISTS_KEPT)
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        await self._client.__aenter__()
        topics = [(build_topic(self._scheme, self._device, op, "result"), 1) for op in COMMAND_OPS]
        topics.append((build_topic(self._scheme, self._device, "list", "post"), 1))
        await self._client.subscribe(topics)
        self._reader = asyncio.create_task(self._read(), name="sdk-reader")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self._client.__aexit__(None, None, None)

    async def _read(self) -> None:
        """Watches for the disconnect; messages come to :meth:`_on_message` directly."""
        async for message in self._client.messages:  # only if one bypassed the forwarding
            self._on_message(message)

    def _on_message(self, message: aiomqtt.Message) -> None:
        payload = message.payload if isinstance(message.payload, bytes) else b""
        try:
            topic = parse_topic(message.topic.value)
        except ValueError:
            return  # not one of ours (amqtt may replay other retained messages)
        if topic.op == "list":
            if self._lists.full():  # keep the newest reports only
                self._lists.get_nowait()
            self._lists.put_nowait(payload)  # parsed when read: most are never read
            return
        reply = _reply_of(payload)
        future = self._pending.pop(reply, None) if reply else None
        if future is not None and not future.done():
            future.set_result(payload)

    async def send_raw(self, op: str, payload: bytes, mid: str) -> bytes:
        """Publish a raw command payload and await the raw result for ``mid``."""
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pending[mid] = future
        await self._client.publish(
            build_topic(self._scheme, self._device, op, "command"), payload, qos=1
        )
        try:
            return await asyncio.wait_for(future, self._timeout_s)
        except TimeoutError:
            self._pending.pop(mid, None)
            raise CommandTimeoutError(
                f"no {op} result for mid {mid} in {self._timeout_s} s"
            ) from None

    async def request(self, op: str, data: Any = None, *, mid: str | None = None) -> Result:
        """Send one command and return its parsed result."""
        mid = mid or str(uuid.uuid4())
        envelope: dict[str, Any] = {
            "mid": mid,
            "type": message_type(op),
            "device_uid": self._device,
            "timestamp": now_ms(),
        }
        if data is not None:
            envelope["data"] = data
        raw = await self.send_raw(op, codec.json_bytes(envelope), mid)
        return codec.parse_model(RESULT_MODELS[op], raw)

    async def sync(self) -> SyncResult:
        result = await self.request("sync")
        assert isinstance(result, SyncResult)
        return result

    async def create(self, data: dict[str, Any]) -> CreateResult:
        result = await self.request("create", data)
        assert isinstance(result, CreateResult)
        return result

    async def update(self, data: dict[str, Any]) -> UpdateResult:
        result = await self.request("update", data)
        assert isinstance(result, UpdateResult)
        return result

    async def delete(self, strategy_id: int) -> DeleteResult:
        result = await self.request("delete", {"id": strategy_id})
        assert isinstance(result, DeleteResult)
        return result

    async def update_all(self, items: list[dict[str, Any]]) -> UpdateAllResult:
        result = await self.request("update_all", items)
        assert isinstance(result, UpdateAllResult)
        return result

    async def lists(self) -> AsyncIterator[ListPost]:
        """list/post reports as they arrive (the retained one first)."""
        while True:
            payload = await self._lists.get()
            try:
                report = codec.parse_model(ListPost, payload)
            except ValueError:
                continue  # not a list we can read: skip it, like a lost report
            yield report


def _reply_of(payload: bytes) -> str | None:
    try:
        raw = codec.loads_lenient(payload)
    except ValueError:
        return None
    reply = raw.get("reply") if isinstance(raw, dict) else None
    return reply if isinstance(reply, str) else None
