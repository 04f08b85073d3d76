"""The pure alarm conditions and the hold-for-N-seconds debounce."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gridguard.platform import alarms as law
from gridguard.platform.telemetry import Sample

pytestmark = pytest.mark.unit

T0 = datetime(2026, 6, 10, 0, 0, tzinfo=UTC)
REPORTED: list[dict[str, Any]] = [
    {
        "ele_meter_id": 9,
        "streaming_status": 1,
        "streaming_condition": 10,
        "over_demand_status": 1,
        "over_demand_condition": [150] * 12,
    }
]


def sample(grid: float | None = 50.0, demand: float | None = 0.0, failsafe: bool = False) -> Sample:
    return Sample("d1", 9, T0, grid, demand, failsafe)


@pytest.mark.parametrize(
    ("kind", "s", "reported", "held"),
    [
        ("backflow", sample(grid=9.9), REPORTED, True),  # below the 10 kW baseline
        ("backflow", sample(grid=10.0), REPORTED, False),  # at the baseline is compliant
        ("backflow", sample(grid=-5.0), [], False),  # no anti-backflow strategy: no baseline
        ("backflow", sample(grid=None), REPORTED, False),  # a silent meter is fail-safe's case
        ("demand_over_limit", sample(demand=150.5), REPORTED, True),
        ("demand_over_limit", sample(demand=150.0), REPORTED, False),
        ("failsafe", sample(failsafe=True), [], True),
    ],
    ids=["below", "at-baseline", "no-strategy", "silent", "over", "at-limit", "failsafe"],
)
def test_condition(kind: law.AlarmKind, s: Sample, reported: Any, held: bool) -> None:
    assert law.condition(kind, s, reported, "Asia/Shanghai")[0] is held


def test_debounce_needs_the_whole_duration_without_a_break() -> None:
    debounce, key = law.Debounce(), ("r", "d")
    at = [T0 + timedelta(seconds=s) for s in range(0, 50, 10)]
    assert [debounce.update(key, True, t, 30) for t in at[:4]] == [False, False, False, True]
    assert debounce.update(key, False, at[4], 30) is False
    assert debounce.update(key, True, at[4], 30) is False  # the clock restarts after a break


@pytest.mark.parametrize(
    ("url", "logged"),
    [
        ("https://u:secret@hooks.example/x?token=abc#f", "https://hooks.example/x"),
        ("http://127.0.0.1:9000/hook", "http://127.0.0.1:9000/hook"),
    ],
    ids=["credentials-and-query-dropped", "plain-kept"],
)
def test_webhook_urls_are_logged_without_secrets(url: str, logged: str) -> None:
    from gridguard.platform.alarm_service import _without_credentials  # noqa: PLC0415

    assert _without_credentials(url) == logged
