"""The demand meter (D17/D18): sliding window, month maximum, time zone, persistence."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from gridguard.control.demand import DemandMeter

pytestmark = pytest.mark.unit

SHANGHAI = ZoneInfo("Asia/Shanghai")


def epoch(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI).timestamp()


def run(meter: DemandMeter, start_s: float, seconds: int, kw: float | None) -> float:
    for t in range(1, seconds + 1):
        meter.add(kw, 1.0, start_s + t)
    return start_s + seconds


def fresh() -> DemandMeter:
    return DemandMeter(window_s=900, step_s=60, zone=SHANGHAI)


def test_no_demand_until_first_full_window() -> None:
    """D18: 0 until the first full 15-minute window, then the window's average."""
    meter = fresh()
    t = run(meter, epoch("2024-06-03T10:00:00"), 14 * 60, 100.0)
    assert meter.demand_kw == 0.0
    run(meter, t, 61, 100.0)
    assert meter.demand_kw == pytest.approx(100.0)
    assert meter.month_max_kw == pytest.approx(100.0)


def test_window_slides_by_step() -> None:
    """D17: 15 min at 100 then 5 min at 200 -> (10 x 100 + 5 x 200) / 15 once stepped."""
    meter = fresh()
    t = run(meter, epoch("2024-06-03T10:00:00"), 900, 100.0)
    run(meter, t, 5 * 60 + 1, 200.0)
    assert meter.demand_kw == pytest.approx((10 * 100 + 5 * 200) / 15)


def test_export_is_not_negative_demand() -> None:
    """Only import counts: 7.5 min exporting 300 and 7.5 min importing 100 -> 50."""
    meter = fresh()
    t = run(meter, epoch("2024-06-03T10:00:00"), 450, -300.0)
    run(meter, t, 451, 100.0)
    assert meter.demand_kw == pytest.approx(50.0, abs=0.5)


def test_month_max_resets_at_local_month_boundary() -> None:
    """D18: the reset follows the site's zone (local midnight), not UTC midnight."""
    meter = fresh()
    t = run(meter, epoch("2024-06-30T23:00:00"), 3540, 500.0)  # up to 23:59 local
    assert meter.month_max_kw == pytest.approx(500.0)
    t = run(meter, t, 120, 500.0)  # crosses local midnight into July
    assert meter.month_of_year == 7
    assert meter.month_max_kw == 0.0
    run(meter, t, 15 * 60, 300.0)
    assert meter.month_max_kw == pytest.approx(300.0, abs=15.0)


def test_silent_meter_breaks_the_window() -> None:
    """A step without valid readings restarts the window instead of inventing energy."""
    meter = fresh()
    t = run(meter, epoch("2024-06-03T10:00:00"), 600, 100.0)
    t = run(meter, t, 120, None)
    run(meter, t, 600, 100.0)
    assert meter.demand_kw == 0.0


def test_state_survives_restart_in_same_month_only() -> None:
    """D18: the month's maximum is persisted; a stale month is dropped on restore."""
    meter = fresh()
    t = run(meter, epoch("2024-06-03T10:00:00"), 1000, 250.0)
    saved = meter.export()
    again = fresh()
    again.restore(saved, t + 5.0)
    assert again.month_max_kw == pytest.approx(250.0)
    later = fresh()
    later.restore(saved, epoch("2024-07-01T00:10:00"))
    assert later.month_max_kw == 0.0
