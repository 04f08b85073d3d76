"""The fleet's toy plant: plausible live values for a simulated EMS, pure and cheap.

Not the site simulator's plant (``gridguard.plant``, which steps real device models for the
control bench): 10,000 EMS publish status every few seconds, so each step here is a few
arithmetic lines per meter. Load follows a daily curve with a ripple, PV a daylight arc, piles
an hourly swing; the strategies act as a controller would: storage discharges to hold the
over-demand target T (raised by dynamic demand, D18) and never below the anti-backflow floor,
PV is curtailed to keep import above the floor, piles are throttled above T. Power in kW,
+ import at the meter, + discharge for storage (as everywhere in GridGuard).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from gridguard.sim.fleet_site import MeterShape
from gridguard.strategy.model import Strategy
from gridguard.vocab import ENABLED, DeviceClass

DAY_S = 86_400.0
DEMAND_WINDOW_S = 900.0
BUFFER_KW = 2.0
PHASE_SPLIT = (0.36, 0.33, 0.31)
UTC_OFFSET_H = 8.0
"""Sites are in China Standard Time (the shapes' time zone): daylight is from 06:00 to 18:00."""


@dataclass(slots=True)
class MeterState:
    """What a meter remembers between steps: sliding demand, the month's peak, storage SoC."""

    demand_kw: float
    peak_kw: float = 0.0
    soc_pct: float = 60.0


@dataclass(frozen=True, slots=True)
class MeterStep:
    grid_power_kw: float
    phase_power_kw: tuple[float, float, float] | None
    target_kw: float | None
    floor_kw: float | None
    storage_kw: float
    pv_kw: float
    pv_limit_kw: float | None
    charger_kw: float
    charger_limit_kw: float | None


def _world(meter: MeterShape, t_s: float, scale: float, phase: float) -> tuple[float, float, float]:
    """(load, PV available, pile demand) in kW at time ``t_s`` (Unix seconds)."""
    day = (t_s / DAY_S + phase) % 1.0
    ripple = 1.0 + 0.04 * math.sin(2 * math.pi * t_s / 37.0 + 7.0 * phase)
    load_kw = meter.base_load_kw * scale * (0.75 + 0.25 * math.sin(2 * math.pi * day)) * ripple
    hour = (t_s / 3600.0 + UTC_OFFSET_H) % 24.0
    sun = max(0.0, math.sin(math.pi * (hour - 6.0) / 12.0))
    pv_kw = meter.rated_kw["pv"] * sun * 0.85
    swing = 0.5 + 0.5 * math.sin(2 * math.pi * t_s / 3600.0 + 3.0 * phase)
    charger_kw = meter.rated_kw["charger"] * swing
    return load_kw, pv_kw, charger_kw


def _bounds(
    strategies: Mapping[int, Strategy], state: MeterState, month: int
) -> tuple[float | None, float | None]:
    """(target T, anti-backflow floor) from the meter's strategies; None where off."""
    target = floor = None
    for s in strategies.values():
        if s.over_demand_status == ENABLED:
            t_kw = float(s.over_demand_condition[month - 1])
            if s.dynamic_demand_status == ENABLED:
                t_kw = max(t_kw, state.peak_kw * s.dynamic_demand_percentage / 100.0)
            target = t_kw if target is None else min(target, t_kw)
        if s.streaming_status == ENABLED:
            f_kw = float(s.streaming_condition)
            floor = f_kw if floor is None else max(floor, f_kw)
    return target, floor


def step_meter(
    meter: MeterShape,
    strategies: Mapping[int, Strategy],
    state: MeterState,
    *,
    t_s: float,
    dt_s: float,
    month: int,
    scale: float = 1.0,
    phase: float = 0.0,
) -> MeterStep:
    """Advance one meter by ``dt_s``; ``strategies`` are those bound to this meter."""
    load_kw, pv_kw, charger_kw = _world(meter, t_s, scale, phase)
    by_class = {s.device_type: s for s in strategies.values()}
    target, floor = _bounds(strategies, state, month)
    storage_rated = meter.rated_kw["storage"]
    raw_kw = load_kw + charger_kw - pv_kw
    storage_kw = 0.0
    if DeviceClass.STORAGE in by_class and target is not None and raw_kw > target - BUFFER_KW:
        storage_kw = min(storage_rated, raw_kw - target + BUFFER_KW)
    elif DeviceClass.STORAGE in by_class and state.soc_pct < 90.0 and raw_kw < 0.6 * load_kw:
        storage_kw = -0.3 * storage_rated
    if floor is not None and storage_kw > 0:
        storage_kw = max(0.0, min(storage_kw, raw_kw - floor - BUFFER_KW))
    charger_limit = None
    grid_kw = raw_kw - storage_kw
    if DeviceClass.CHARGER in by_class and target is not None and grid_kw > target:
        charger_limit = max(0.0, charger_kw - (grid_kw - target))
        grid_kw -= charger_kw - charger_limit
        charger_kw = charger_limit
    pv_limit = None
    if DeviceClass.PV in by_class and floor is not None and grid_kw < floor + BUFFER_KW:
        pv_limit = max(0.0, pv_kw - (floor + BUFFER_KW - grid_kw))
        grid_kw += pv_kw - pv_limit
        pv_kw = pv_limit
    _remember(state, meter, grid_kw, storage_kw, dt_s)
    return MeterStep(
        grid_power_kw=grid_kw,
        phase_power_kw=tuple(grid_kw * p for p in PHASE_SPLIT) if meter.per_phase else None,  # type: ignore[arg-type] # three shares, three phases
        target_kw=target,
        floor_kw=floor,
        storage_kw=storage_kw,
        pv_kw=pv_kw,
        pv_limit_kw=pv_limit,
        charger_kw=charger_kw,
        charger_limit_kw=charger_limit,
    )


def _remember(
    state: MeterState, meter: MeterShape, grid_kw: float, storage_kw: float, dt_s: float
) -> None:
    weight = min(1.0, dt_s / DEMAND_WINDOW_S)
    state.demand_kw += (grid_kw - state.demand_kw) * weight
    state.peak_kw = max(state.peak_kw, state.demand_kw)
    capacity = meter.capacity_kwh
    if capacity > 0:
        soc = state.soc_pct - storage_kw * dt_s / 3600.0 / capacity * 100.0
        state.soc_pct = min(95.0, max(10.0, soc))
