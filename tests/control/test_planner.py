"""Levelling (D17 when the battery cannot hold T): the lowest level the battery can sustain."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from gridguard.control.planner import BIN_S, Battery, LoadPlanner, battery_budget, levelling_kw
from gridguard.control.view import StorageRating
from gridguard.devices.protocols import StorageReading

pytestmark = pytest.mark.unit

BIG = Battery(
    stored_kwh=200.0, room_kwh=100.0, discharge_kw=250.0, charge_kw=250.0, efficiency_one_way=1.0
)


@pytest.mark.parametrize(
    ("loads", "floor_kw", "battery", "level_kw"),
    [
        # the battery covers 4 h x 40 kW above T: stay at T
        ([440.0] * 4, 400.0, BIG, 400.0),
        # 4 h x 100 kW = 400 kWh > 200 kWh stored: level at 500 - 200 / 4 = 450
        ([500.0] * 4, 400.0, BIG, 450.0),
        # power-bound: 800 kW peak, 250 kW inverter -> at least 550
        ([800.0], 400.0, Battery(300.0, 0.0, 250.0, 250.0, 1.0), 550.0),
        # energy-bound on the same peak with 200 kWh: 800 - 200 = 600
        ([800.0], 400.0, BIG, 600.0),
        # recharge between two peaks makes T feasible again (100 + 100 kWh)
        ([500.0, 300.0, 500.0], 400.0, Battery(100.0, 100.0, 250.0, 250.0, 1.0), 400.0),
        # efficiency: 90 % one way -> only 180 kWh reach the AC side: 500 - 180 / 4
        ([500.0] * 4, 400.0, Battery(200.0, 0.0, 250.0, 250.0, 0.9), 455.0),
        # no forecast (nothing learned yet): keep T
        ([], 400.0, BIG, 400.0),
    ],
    ids=[
        "covered",
        "level-energy",
        "level-power",
        "level-energy-short",
        "recharge-between",
        "efficiency",
        "empty",
    ],
)
def test_levelling(loads: list[float], floor_kw: float, battery: Battery, level_kw: float) -> None:
    got = levelling_kw(loads, [1.0] * len(loads), floor_kw=floor_kw, battery=battery)
    assert got == pytest.approx(level_kw, abs=0.3)


def test_profile_learns_from_the_past_only() -> None:
    """Day 1 teaches the profile; its forecast for day 2 is day 1's shape times today's
    median ratio over the last hour (1.1), its excess decaying 0.99 per bin ahead."""
    zone = ZoneInfo("Asia/Shanghai")
    planner = LoadPlanner(zone, weight=0.3)
    start = datetime(2024, 6, 3, tzinfo=zone).timestamp()  # a Monday, local midnight
    for t in range(0, 86400, 10):
        planner.observe(600.0 if 9 * 3600 <= t < 17 * 3600 else 200.0, start + t)
    for t in range(86400, 86400 + 8 * 3600 + 20, 10):  # day 2 runs 10 % higher until 08:00
        planner.observe(220.0, start + t)
    loads, hours = planner.forecast(start + 86400 + 8 * 3600 + 20)
    assert len(loads) == 86400 // BIN_S
    assert hours[1] == pytest.approx(0.25)
    assert loads[4] == pytest.approx(600.0 * (1.0 + 0.1 * 0.99**4), rel=0.01)  # 09:00
    assert loads[0] == pytest.approx(220.0, rel=0.02)


UNIT = StorageRating(rated_kw=100.0, capacity_kwh=200.0, soc_min_pct=10.0, soc_max_pct=90.0)


@pytest.mark.parametrize(
    ("units", "expected"),
    [
        # one unit at 50 %: 80 kWh above the minimum, 80 kWh of room, sqrt(0.92) each way
        (
            ((StorageReading(0.0, 50.0, 100.0, 100.0), UNIT),),
            Battery(80.0, 80.0, 100.0, 100.0, math.sqrt(0.92)),
        ),
        # the site file's efficiency of each unit, averaged one way by capacity:
        # 200 kWh at 81 % (0.9) and 600 kWh at 64 % (0.8) -> 0.825
        (
            (
                (StorageReading(0.0, 50.0, 100.0, 100.0), replace(UNIT, efficiency=0.81)),
                (
                    StorageReading(0.0, 50.0, 300.0, 300.0),
                    replace(UNIT, rated_kw=300.0, capacity_kwh=600.0, efficiency=0.64),
                ),
            ),
            Battery(320.0, 320.0, 400.0, 400.0, 0.825),
        ),
        # an offline unit brings neither energy, power nor its efficiency
        (
            (
                (StorageReading(0.0, 50.0, 100.0, 100.0), replace(UNIT, efficiency=0.81)),
                (StorageReading(0.0, 50.0, 0.0, 0.0, online=False), replace(UNIT, efficiency=0.5)),
            ),
            Battery(80.0, 80.0, 100.0, 100.0, 0.9),
        ),
    ],
    ids=["one-unit-default", "per-unit-efficiency", "offline-left-out"],
)
def test_battery_budget(
    units: tuple[tuple[StorageReading, StorageRating], ...], expected: Battery
) -> None:
    """The planner's energy budget uses each unit's own round-trip efficiency."""
    got = battery_budget(tuple(r for r, _ in units), tuple(c for _, c in units))
    assert got.stored_kwh == pytest.approx(expected.stored_kwh)
    assert got.room_kwh == pytest.approx(expected.room_kwh)
    assert (got.discharge_kw, got.charge_kw) == (expected.discharge_kw, expected.charge_kw)
    assert got.efficiency_one_way == pytest.approx(expected.efficiency_one_way)
