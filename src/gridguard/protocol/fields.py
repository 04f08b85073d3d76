"""Field types with the rules of D14, each failing with a message that names the rule.

Each type is an ``Annotated`` type whose before-validator checks the raw JSON value itself, so
the message a platform user reads is ours (``must be 1 (enabled) or 2 (disabled), got 3``),
not a generic parser message. Booleans are never accepted for numbers (JSON ``true`` is not 1).
"""

from __future__ import annotations

import math
import re
import uuid
from typing import Annotated, Any

from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError

from gridguard.protocol.timefmt import RFC3339_RE

MONTHS = 12
MAX_KW = 65_535
"""Conditions are whole kW in 0..65,535, as in the vendor's HTTP API."""
MAX_ID = 2**53 - 1
"""Ids and timestamps stay exact in a JavaScript number and fit a 64-bit column."""
_SHOWN_MAX_CHARS = 40


def _fail(rule: str, value: Any) -> PydanticCustomError:
    shown = repr(value) if isinstance(value, str) else _json_repr(value)
    if len(shown) > _SHOWN_MAX_CHARS:
        shown = f"{shown[: _SHOWN_MAX_CHARS - 3]}..."
    return PydanticCustomError(
        "gridguard_rule", "{rule}, got {shown}", {"rule": rule, "shown": shown}
    )


def _json_repr(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return type(value).__name__ if not value else f"a {type(value).__name__}"
    return str(value)


def _whole_number(value: Any) -> int | None:
    """The int a JSON number stands for, or None (1000.0 counts, 1.5 and true don't)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return None


def _status(value: Any) -> int:
    number = _whole_number(value)
    if number not in (1, 2):
        raise _fail("must be 1 (enabled) or 2 (disabled)", value)
    return number


def _kw(value: Any) -> int:
    number = _whole_number(value)
    if number is None or not 0 <= number <= MAX_KW:
        raise _fail(f"must be a whole number of kW in 0..{MAX_KW}", value)
    return number


def _positive_id(value: Any) -> int:
    number = _whole_number(value)
    if number is None or not 0 < number <= MAX_ID:
        raise _fail("must be a positive integer id below 2^53", value)
    return number


def _device_type(value: Any) -> int:
    number = _whole_number(value)
    if number not in (2, 3, 4):
        raise _fail("must be 2 (storage), 3 (PV) or 4 (charging pile)", value)
    return number


def _percentage(value: Any) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not 0 < value <= 100 or not math.isfinite(value):  # range first: no float()
        raise _fail("must be a number in (0, 100]", value)
    return float(value)


def _monthly(value: Any) -> list[int]:
    if not isinstance(value, list):
        raise _fail("must be a list of 12 monthly kW values (Jan..Dec)", value)
    if len(value) != MONTHS:
        raise PydanticCustomError(
            "gridguard_rule",
            "expected 12 monthly values (Jan..Dec), got {count}",
            {"count": len(value)},
        )
    return value


def _timestamp_ms(value: Any) -> int:
    number = _whole_number(value)
    if number is None or not 0 < number <= MAX_ID:
        raise _fail("must be a positive integer of milliseconds since the epoch", value)
    return number


def _uuid(value: Any) -> str:
    if not isinstance(value, str):
        raise _fail("must be a UUID string", value)
    try:
        uuid.UUID(value)
    except ValueError:
        raise _fail("must be a UUID", value) from None
    return value


def _non_empty_str(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise _fail("must be a non-empty string", value)
    return value


def _wire_time(value: Any) -> str:
    if not isinstance(value, str) or not RFC3339_RE.match(value):
        raise _fail("must be an RFC 3339 time like 2024-06-06T08:59:20.21309056Z", value)
    return value


_TYPE_RE = re.compile(r"^streaming_overdemand_[a-z_]+$")

Status = Annotated[int, BeforeValidator(_status)]
Kw = Annotated[int, BeforeValidator(_kw)]
PositiveId = Annotated[int, BeforeValidator(_positive_id)]
DeviceType = Annotated[int, BeforeValidator(_device_type)]
Percentage = Annotated[float, BeforeValidator(_percentage)]
MonthlyKw = Annotated[list[Kw], BeforeValidator(_monthly)]
TimestampMs = Annotated[int, BeforeValidator(_timestamp_ms)]
Uuid = Annotated[str, BeforeValidator(_uuid)]
NonEmptyStr = Annotated[str, BeforeValidator(_non_empty_str)]
WireTime = Annotated[str, BeforeValidator(_wire_time)]
