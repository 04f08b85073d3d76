"""Cycle tables for the bound laws: D15 anti-backflow, D16 single phase, D17/D18 target, D19."""

from __future__ import annotations

import math

import pytest

from gridguard.control.laws.backflow import backflow_floor_kw
from gridguard.control.laws.combine import Bounds, combine_bounds
from gridguard.control.laws.overdemand import (
    demand_target_kw,
    meter_target_kw,
    month_limit_kw,
    over_demand_ceiling_kw,
)
from gridguard.control.laws.phase import phase_floor_kw
from tests.control.helpers import strategy

pytestmark = pytest.mark.unit

MONTHLY = (100, 200, 300, 400, 500, 600, 700, 800, 900, 1000, 1100, 1200)


@pytest.mark.parametrize(
    ("streaming_kw", "buffer_kw", "floor_kw"),
    [
        (0.0, 2.0, 2.0),  # X = 0 is zero export; the buffer keeps us just inside (D15, D20)
        (50.0, 2.0, 52.0),  # X > 0 is a safety margin of import on top
        (50.0, 0.0, 50.0),  # no buffer: the floor is the baseline itself
    ],
    ids=["zero-export", "margin", "no-buffer"],
)
def test_backflow_floor(streaming_kw: float, buffer_kw: float, floor_kw: float) -> None:
    assert backflow_floor_kw(streaming_kw=streaming_kw, buffer_kw=buffer_kw) == floor_kw


@pytest.mark.parametrize(
    ("grid_kw", "phases", "phase_kw", "floor_kw"),
    [
        # A at -10 kW exports while the total imports 80: A needs +12 -> total +36 (D16)
        (80.0, (-10.0, 40.0, 50.0), 0.0, 80.0 + 3 * 12.0),
        # every phase above Y + buffer: the floor sits below the present total (no action)
        (150.0, (50.0, 50.0, 50.0), 10.0, 150.0 + 3 * (12.0 - 50.0)),
        # worst phase exactly at Y + buffer: floor = present total, nothing to do
        (36.0, (12.0, 12.0, 12.0), 10.0, 36.0),
    ],
    ids=["one-phase-exports", "all-phases-fine", "at-the-floor"],
)
def test_phase_floor(
    grid_kw: float, phases: tuple[float, float, float], phase_kw: float, floor_kw: float
) -> None:
    got = phase_floor_kw(
        grid_power_kw=grid_kw, phase_power_kw=phases, phase_kw=phase_kw, buffer_kw=2.0
    )
    assert got == pytest.approx(floor_kw)


@pytest.mark.parametrize(
    ("month", "dynamic", "pct", "dd_kw", "target_kw"),
    [
        (6, False, 60.0, 0.0, 600.0),  # dynamic off: T = L of June (D18)
        (6, True, 80.0, 0.0, 480.0),  # dynamic on, nothing billed yet: T = L x p
        (6, True, 80.0, 700.0, 560.0),  # a higher peak already billed raises L to it
        (6, True, 100.0, 500.0, 600.0),  # billed peak below L: L stays
        (1, False, 60.0, 999.0, 100.0),  # dynamic off ignores the billed peak; January
        (12, True, 50.0, 0.0, 600.0),  # December is the 12th value
    ],
    ids=["off", "on-empty", "on-billed-higher", "on-billed-lower", "off-ignores", "december"],
)
def test_demand_target(
    month: int, dynamic: bool, pct: float, dd_kw: float, target_kw: float
) -> None:
    got = demand_target_kw(
        monthly_kw=MONTHLY,
        month=month,
        dynamic_enabled=dynamic,
        dynamic_pct=pct,
        dynamic_demand_kw=dd_kw,
    )
    assert got == pytest.approx(target_kw)


def test_month_limit_refuses_wrong_length() -> None:
    """D14: exactly 12 monthly values."""
    with pytest.raises(ValueError, match="12 monthly"):
        month_limit_kw((1, 2, 3), 1)


def test_meter_target_most_restrictive_and_ceiling() -> None:
    """D19: two over-demand strategies on one meter: the lower T wins; ceiling = T - buffer."""
    a = strategy(2, over_demand=(500,) * 12)
    b = strategy(4, over_demand=(400,) * 12, dynamic_pct=90.0)
    target = meter_target_kw((a, b), month=3, dynamic_demand_kw=0.0)
    assert target == pytest.approx(360.0)
    assert meter_target_kw((), month=3, dynamic_demand_kw=0.0) is None
    assert over_demand_ceiling_kw(target_kw=360.0, buffer_kw=2.0) == 358.0


@pytest.mark.parametrize(
    ("floors", "ceilings", "expected"),
    [
        ([], [], Bounds(-math.inf, math.inf)),  # no strategy: grid power is free
        ([2.0, 52.0], [], Bounds(52.0, math.inf)),  # the highest floor is most restrictive
        ([], [398.0, 358.0], Bounds(-math.inf, 358.0)),  # the lowest ceiling
        ([52.0], [398.0], Bounds(52.0, 398.0)),  # both: a band
        ([420.0], [398.0], Bounds(420.0, 420.0)),  # crossing: the floor wins (D19)
    ],
    ids=["free", "floors", "ceilings", "band", "conflict-floor-wins"],
)
def test_combine_bounds(floors: list[float], ceilings: list[float], expected: Bounds) -> None:
    assert combine_bounds(floors, ceilings) == expected
