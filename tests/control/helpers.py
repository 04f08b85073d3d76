"""Builders shared by the control tests."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from gridguard.control.controller import MeterController
from gridguard.control.params import ControlTuning, MeterGoals, StrategyParams, goals_for_meter
from gridguard.control.view import (
    ChargerRating,
    MeterRatings,
    MeterView,
    StorageRating,
)
from gridguard.devices.protocols import (
    ChargerReading,
    MeterReading,
    PvReading,
    StorageReading,
)
from gridguard.site.config import ControlConfig

MONTHLY_400 = (400,) * 12


def strategy(
    device_type: int,
    *,
    streaming_kw: float | None = None,
    phase_kw: float | None = None,
    over_demand: tuple[int, ...] | None = None,
    dynamic_pct: float | None = None,
    meter_id: int = 1,
) -> StrategyParams:
    """One strategy with only the named checks enabled."""
    return StrategyParams(
        meter_id=meter_id,
        device_type=device_type,
        streaming_enabled=streaming_kw is not None,
        streaming_kw=streaming_kw or 0.0,
        phase_enabled=phase_kw is not None,
        phase_kw=phase_kw or 0.0,
        over_demand_enabled=over_demand is not None,
        over_demand_monthly_kw=over_demand or (0,) * 12,
        dynamic_enabled=dynamic_pct is not None,
        dynamic_pct=dynamic_pct or 100.0,
    )


def goals(*strategies: StrategyParams) -> MeterGoals:
    return goals_for_meter(list(strategies), 1)


def all_goals(streaming_kw: float = 0.0, monthly: tuple[int, ...] = MONTHLY_400) -> MeterGoals:
    """Storage, PV and piles all with anti-backflow and over-demand on."""
    return goals(*(strategy(t, streaming_kw=streaming_kw, over_demand=monthly) for t in (2, 3, 4)))


ZONE = ZoneInfo("Asia/Shanghai")
EPOCH_JUNE = 1717200000.0  # 2024-06-01 08:00 Asia/Shanghai


def battery(
    power_kw: float = 0.0,
    *,
    charge_kw: float = 250.0,
    discharge_kw: float = 250.0,
    soc_pct: float = 50.0,
) -> StorageReading:
    return StorageReading(power_kw, soc_pct, charge_kw, discharge_kw)


def inverter(power_kw: float, limit_kw: float = 600.0, rated_kw: float = 600.0) -> PvReading:
    return PvReading(power_kw, limit_kw, rated_kw)


def pile(power_kw: float, limit_kw: float = 60.0, *, connected: bool = True) -> ChargerReading:
    return ChargerReading(power_kw, limit_kw, connected)


def view(
    grid_kw: float,
    *,
    phases: tuple[float, float, float] | None = None,
    storage: tuple[StorageReading, ...] = (),
    pv: tuple[PvReading, ...] = (),
    chargers: tuple[ChargerReading, ...] = (),
) -> MeterView:
    return MeterView(MeterReading(grid_kw, phases), storage, pv, chargers)


def ratings(storage: int = 1, piles: tuple[ChargerRating, ...] = ()) -> MeterRatings:
    return MeterRatings(
        storage=tuple(StorageRating(250.0, 500.0, 10.0, 95.0) for _ in range(storage)),
        chargers=piles,
    )


def controller(r: MeterRatings, *, lag_s: float = 0.0, **config: float) -> MeterController:
    return MeterController(
        ratings=r,
        config=ControlConfig(**config),
        tuning=ControlTuning(actuator_lag_s=lag_s, planner_enabled=False),
        zone=ZONE,
    )
