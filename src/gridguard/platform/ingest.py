"""Everything the platform receives: results, list/post and the status extension."""

from __future__ import annotations

import functools
import logging
from typing import Any

import orjson

from gridguard.clock import Clock
from gridguard.platform.bus import Receipt
from gridguard.platform.commands import Commander
from gridguard.platform.database import JsonText
from gridguard.platform.settings import Settings
from gridguard.platform.telemetry_store import TelemetryWriter
from gridguard.protocol import codec
from gridguard.protocol.errors import ProtocolError
from gridguard.protocol.models import ListPost
from gridguard.protocol.topics import SERVICE, Topic, parse_topic

log = logging.getLogger("gridguard.platform.ingest")


def subscriptions(settings: Settings) -> list[str]:
    """Per prefix: every result, list/post and status/post of every device under it.

    Results reach every instance (the one holding the request answers it). status/post, the
    volume, is a shared subscription: one instance per report (a plain one without a share
    group: one instance, on a broker that has no shared subscriptions). list/post stays unshared,
    because a broker sends no retained message to a shared subscription and the retained
    list is how a restarted platform learns every device at once; writing it twice is harmless.
    """
    out: list[str] = []
    for prefix in settings.prefixes:
        base = f"{prefix}/+/{SERVICE}"
        status = f"{base}/status/post"
        if settings.share_group is not None:
            status = f"$share/{settings.share_group}/{status}"
        out += [f"{base}/+/result", f"{base}/list/post", status]
    return out


@functools.lru_cache(maxsize=65_536)
def _topic(text: str) -> Topic | None:
    """Parsed topics, remembered: a fleet sends the same few topics per device again and again
    (parsing one, with its scheme and uid checks, cost ~15% of ingesting a status report)."""
    try:
        return parse_topic(text)
    except ProtocolError:
        return None


def _status_json(payload: bytes) -> tuple[Any, str | None]:
    """The status document and its text when strict JSON (stored as it came).

    orjson parses the volume (~4x faster than the standard library: parsing was a fifth of the
    platform's CPU per status message); what it refuses (trailing commas, NaN, integers over
    64 bits, lone surrogates, bad UTF-8) goes to the codec's lenient parser, which accepts or
    refuses it as every other message and says why."""
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return codec.loads_lenient_text(payload)
    text = payload.decode("utf-8")  # orjson accepted it: valid UTF-8
    codec.check_depth(text)
    return document, text


class Ingest:
    """Routes one received message to its handler; bad input is logged, never raised."""

    def __init__(self, *, commander: Commander, writer: TelemetryWriter, clock: Clock) -> None:
        self._commander = commander
        self._writer = writer
        self._clock = clock

    async def handle(self, topic_text: str, payload: bytes, receipt: Receipt | None = None) -> None:
        """Route one message. A report taken into the telemetry batch takes over ``receipt``:
        it is acknowledged once the batch is stored; anything else when this returns."""
        if not payload:
            return  # a cleared retained message
        topic = _topic(topic_text)
        if topic is None:
            return
        try:
            if topic.direction == "result":
                self._writer.add(topic.device, topic.scheme, {})  # seen (at the next flush)
                await self._commander.on_result(
                    op=topic.op, device_uid=topic.device, payload=payload
                )
            elif topic.op == "list":
                await self._list(topic, payload, receipt)
            elif topic.op == "status":
                await self._status(topic, payload, receipt)
        except ProtocolError as exc:
            log.warning("refused %s: %s", topic_text, exc)

    async def _list(self, topic: Topic, payload: bytes, receipt: Receipt | None) -> None:
        report = codec.parse_model(ListPost, payload)
        data = report.model_dump(mode="json")["data"]
        values = {"last_list": data, "last_list_at": self._clock.now()}
        await self._seen(topic, values, receipt)

    async def _status(self, topic: Topic, payload: bytes, receipt: Receipt | None) -> None:
        document, text = _status_json(payload)
        if not isinstance(document, dict):
            raise ProtocolError("status/post: must be a JSON object")
        stored = document if text is None else JsonText(document, text)
        values = {"last_status": stored, "last_status_at": self._clock.now()}
        await self._seen(topic, values, receipt)

    async def _seen(self, topic: Topic, values: dict[str, Any], receipt: Receipt | None) -> None:
        self._writer.add(
            topic.device, topic.scheme, values, receipt=receipt.defer() if receipt else None
        )
