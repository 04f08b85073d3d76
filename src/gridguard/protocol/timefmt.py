"""Wire time format (D13): UTC RFC 3339, up to 9 fractional digits, trailing zeros trimmed.

Example: ``2024-06-06T08:59:20.21309056Z``. Python's datetime stops at microseconds, so times
are produced from integer nanoseconds.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from functools import lru_cache

_NS_PER_S = 1_000_000_000
RFC3339_RE = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$",
)


def format_time_ns(epoch_ns: int) -> str:
    """Format nanoseconds since the epoch as D13 wire time."""
    seconds, nanos = divmod(epoch_ns, _NS_PER_S)
    base = _second_text(seconds)
    if nanos == 0:
        return f"{base}Z"
    fraction = f"{nanos:09d}".rstrip("0")
    return f"{base}.{fraction}Z"


@lru_cache(maxsize=8)
def _second_text(seconds: int) -> str:
    """The whole-second part; cached, as a busy agent stamps many messages per second."""
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")


def format_datetime(moment: datetime) -> str:
    """Format an aware datetime as D13 wire time (microsecond precision)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: wire times must be timezone-aware")
    epoch_us = round(moment.timestamp() * 1_000_000)
    return format_time_ns(epoch_us * 1000)


def now_ms() -> int:
    """The current time in ms since the epoch, for the envelope's ``timestamp`` (D2)."""
    return time.time_ns() // 1_000_000
