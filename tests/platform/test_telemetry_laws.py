"""The pure telemetry laws: samples, minute buckets, 15-minute demand, billing month, limit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gridguard.platform import telemetry as law

pytestmark = pytest.mark.unit

T0 = datetime(2026, 6, 10, 0, 0, tzinfo=UTC)


def test_samples_of_takes_each_meter_and_the_reported_time() -> None:
    doc = {
        "at": "2026-06-10T00:00:30+00:00",
        "failsafe": False,
        "meters": [
            {"meter_id": 9, "grid_power_kw": 12.5, "demand_kw": 3.0, "failsafe": True},
            {"meter_id": 10, "grid_power_kw": None, "demand_kw": 0},
            {"meter_id": "x"},
            {"meter_id": 2**31, "grid_power_kw": 1.0},  # no INTEGER column holds it
            {"meter_id": True, "grid_power_kw": 1.0},
        ],
    }
    samples = law.samples_of("d1", doc, T0)
    assert [(s.meter_id, s.grid_power_kw, s.failsafe) for s in samples] == [
        (9, 12.5, True),
        (10, None, False),
    ]
    assert samples[0].at == T0 + timedelta(seconds=30)


def test_minute_buckets_merge_within_a_minute_and_skip_silent_meters() -> None:
    samples = [
        law.Sample("d1", 9, T0 + timedelta(seconds=s), kw, None, False)
        for s, kw in [(0, 10.0), (20, -4.0), (59, 30.0), (60, 7.0)]
    ] + [law.Sample("d1", 9, T0, None, None, False)]
    buckets = law.minute_buckets(samples)
    assert buckets[("d1", 9, T0)] == law.Bucket(36.0, 3, -4.0, 30.0)
    assert buckets[("d1", 9, T0 + law.MINUTE)] == law.Bucket(7.0, 1, 7.0, 7.0)


def _means(values: dict[int, float]) -> dict[datetime, float]:
    return {T0 + m * law.MINUTE: kw for m, kw in values.items()}


@pytest.mark.parametrize(
    ("minutes", "end", "expected"),
    [
        ({m: 100.0 + 10 * m for m in range(16)}, 15, 180.0),  # mean of 110..250
        ({m: 100.0 for m in range(15) if m != 7}, 14, None),  # a hole: no full window
        ({m: -50.0 if m < 5 else 150.0 for m in range(15)}, 14, 100.0),  # export counts as 0
        (dict.fromkeys(range(14), 80.0), 13, None),  # 14 minutes are not a window
    ],
    ids=["rising", "missing-minute", "export-is-zero", "short"],
)
def test_sliding_demand(minutes: dict[int, float], end: int, expected: float | None) -> None:
    result = law.sliding_demand(_means(minutes), [T0 + end * law.MINUTE])
    assert result.get(T0 + end * law.MINUTE) == (
        pytest.approx(expected) if expected is not None else None
    )


@pytest.mark.parametrize(
    ("moment", "zone", "month"),
    [
        (datetime(2026, 6, 30, 16, 30, tzinfo=UTC), "Asia/Shanghai", "2026-07"),
        (datetime(2026, 6, 30, 15, 30, tzinfo=UTC), "Asia/Shanghai", "2026-06"),
        (datetime(2026, 7, 1, 2, 0, tzinfo=UTC), "America/New_York", "2026-06"),
    ],
    ids=["shanghai-midnight-passed", "shanghai-before-midnight", "new-york-behind"],
)
def test_month_is_the_sites(moment: datetime, zone: str, month: str) -> None:
    assert law.month_key(moment, zone) == month


REPORTED: list[dict[str, Any]] = [
    {"ele_meter_id": 9, "over_demand_status": 1, "over_demand_condition": list(range(1, 13))},
    {"ele_meter_id": 9, "over_demand_status": 1, "over_demand_condition": [5] * 12},
    {"ele_meter_id": 9, "over_demand_status": 2, "over_demand_condition": [1] * 12},
    {"ele_meter_id": 10, "over_demand_status": 1, "over_demand_condition": [99] * 12},
]


@pytest.mark.parametrize(
    ("meter", "month", "limit"),
    [(9, 3, 3.0), (9, 7, 5.0), (10, 1, 99.0), (11, 1, None)],
    ids=["lowest-enabled", "other-strategy-lower", "other-meter", "no-strategy"],
)
def test_month_limit(meter: int, month: int, limit: float | None) -> None:
    assert law.month_limit_kw(REPORTED, meter, month) == limit


def test_regroup_into_quarter_hours() -> None:
    points = [(T0 + m * law.MINUTE, law.Bucket(float(m), 1, float(m), float(m))) for m in range(20)]
    groups = law.regroup(points, 900)
    assert [(at, b.count, b.min_kw, b.max_kw) for at, b in groups] == [
        (T0, 15, 0.0, 14.0),
        (T0 + timedelta(minutes=15), 5, 15.0, 19.0),
    ]
