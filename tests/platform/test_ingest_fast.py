"""The status path's shortcuts: orjson with the codec behind it, the stored text, the memo of
repeated bind values, the flush period measured start to start."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy.dialects import sqlite

from gridguard.clock import FakeClock
from gridguard.platform.database import JsonText, StoredJson, _processed
from gridguard.platform.ingest import _status_json
from gridguard.platform.telemetry_store import TelemetryWriter
from gridguard.protocol.errors import JsonSyntaxError
from gridguard.protocol.topics import TopicScheme

pytestmark = pytest.mark.unit


def test_strict_status_keeps_its_text() -> None:
    payload = b'{"at": "2026-06-10T00:00:00Z",  "meters": [], "note": "\xe5\x8a\x9f"}'
    document, text = _status_json(payload)
    assert document == {"at": "2026-06-10T00:00:00Z", "meters": [], "note": "功"}
    assert text == payload.decode()


def test_trailing_commas_go_to_the_codec_and_keep_no_text() -> None:
    assert _status_json(b'{"meters": [1, 2,],}') == ({"meters": [1, 2]}, None)


def test_an_integer_over_64_bits_is_kept_exact_in_the_text() -> None:
    """orjson reads it as a float (the samples are floats anyway); the stored text is exact."""
    payload = b'{"big": 123456789012345678901234567890}'
    document, text = _status_json(payload)
    assert document["big"] == pytest.approx(1.2345678901234568e29)
    assert text == payload.decode()


@pytest.mark.parametrize(
    ("payload", "says"),
    [
        (b'{"grid_power_kw": NaN}', "NaN is not a JSON number"),
        (b'{"a": ' + b"[" * 40 + b"]" * 40 + b"}", "nested deeper than"),
        (b'{"a": 1', "invalid JSON at line 1"),
        (b'{"a": "\xff"}', "not UTF-8"),
    ],
)
def test_bad_status_is_refused_with_the_codecs_reason(payload: bytes, says: str) -> None:
    with pytest.raises(JsonSyntaxError, match=says):
        _status_json(payload)


def test_stored_json_writes_the_text_and_serializes_the_rest() -> None:
    process = StoredJson().bind_processor(sqlite.dialect())
    assert process is not None
    assert process(JsonText({"a": 1}, '{"a":   1}')) == '{"a":   1}'
    assert process({"a": 1}) == '{"a": 1}'


def test_a_repeated_value_is_processed_once() -> None:
    calls: list[object] = []

    def processor(value: object) -> str:
        calls.append(value)
        return f"<{value}>"

    a, b = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    assert _processed(processor, [a, a, b, a]) == [f"<{a}>", f"<{a}>", f"<{b}>", f"<{a}>"]
    assert calls == [a, b, a]


class _SlowFlushWriter(TelemetryWriter):
    """A flush that takes ``flush_s`` of the fake clock."""

    def __init__(self, clock: FakeClock, flush_s: float) -> None:
        super().__init__(None, clock)  # type: ignore[arg-type]  # flush never reaches the db
        self._fake, self._flush_s = clock, flush_s
        self.starts: list[float] = []

    async def flush(self) -> None:
        self._wake.clear()
        self.starts.append(self._fake.monotonic_s())
        self._fake.advance(self._flush_s)


@pytest.mark.parametrize(("flush_s", "period_s"), [(0.15, 0.2), (0.05, 0.2), (0.3, 0.3)])
async def test_flushes_start_one_period_apart(flush_s: float, period_s: float) -> None:
    """A flush's own time is inside the 200 ms period, not added to it (one that takes
    longer is followed by the next at once)."""
    clock = FakeClock()
    writer = _SlowFlushWriter(clock, flush_s)
    stop = asyncio.Event()

    async def feed() -> None:
        while len(writer.starts) < 4:
            writer.add("gg-1", TopicScheme("custom", prefix="p"), {})
            await asyncio.sleep(0)
        stop.set()

    await asyncio.gather(writer.run(stop), feed())
    gaps = [b - a for a, b in zip(writer.starts, writer.starts[1:4], strict=False)]
    assert gaps == pytest.approx([period_s] * 3)
