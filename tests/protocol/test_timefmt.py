"""D13 wire time format."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from gridguard.protocol.timefmt import format_datetime, format_time_ns

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("epoch_ns", "expected"),
    [
        (1717664360213090560, "2024-06-06T08:59:20.21309056Z"),
        (1717664360000000000, "2024-06-06T08:59:20Z"),
        (1717664360100000000, "2024-06-06T08:59:20.1Z"),
        (1717664360000000001, "2024-06-06T08:59:20.000000001Z"),
    ],
    ids=["spec-example-8-digits", "whole-second-no-fraction", "trailing-zeros-trimmed", "9-digits"],
)
def test_format_time_ns(epoch_ns: int, expected: str) -> None:
    """UTC, up to 9 fractional digits, trailing zeros trimmed."""
    assert format_time_ns(epoch_ns) == expected


def test_format_datetime_converts_to_utc() -> None:
    """A Shanghai time is written in UTC."""
    shanghai = timezone(timedelta(hours=8))
    assert format_datetime(datetime(2024, 6, 6, 16, 59, 20, 213090, tzinfo=shanghai)) == (
        "2024-06-06T08:59:20.21309Z"
    )
    assert format_datetime(datetime(2024, 1, 1, tzinfo=UTC)) == "2024-01-01T00:00:00Z"


def test_naive_datetime_refused() -> None:
    """A naive datetime has no place on the wire."""
    with pytest.raises(ValueError, match="naive"):
        format_datetime(datetime(2024, 1, 1))  # noqa: DTZ001
