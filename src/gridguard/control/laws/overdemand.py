"""Over-demand (需量控制, D17) and dynamic demand (动态需量, D18): the target T and the ceiling.

Sign convention: grid power + import. Demand is the sliding window average of import (see
``demand.py``). The limit L is the month's ``over_demand_condition``; with dynamic demand on,
L = max(L, dynamic_demand), since guarding below a peak the bill already holds saves nothing,
and T = L x p / 100. With it off, T = L. The law keeps instantaneous import at or below T
(minus the buffer) whenever the devices can, which keeps every window's average below T too.
"""

from __future__ import annotations

from gridguard.control.params import StrategyParams
from gridguard.strategy.model import month_condition


def month_limit_kw(monthly_kw: tuple[int, ...], month: int) -> float:
    """``current_over_demand_condition`` (D14) for ``month`` (1..12), in kW."""
    return float(month_condition(monthly_kw, month))


def demand_target_kw(
    *,
    monthly_kw: tuple[int, ...],
    month: int,
    dynamic_enabled: bool,
    dynamic_pct: float,
    dynamic_demand_kw: float,
) -> float:
    """Target T in kW for one strategy (D18)."""
    limit_kw = month_limit_kw(monthly_kw, month)
    if not dynamic_enabled:
        return limit_kw
    return max(limit_kw, dynamic_demand_kw) * dynamic_pct / 100.0


def meter_target_kw(
    strategies: tuple[StrategyParams, ...], *, month: int, dynamic_demand_kw: float
) -> float | None:
    """The most restrictive T over a meter's over-demand strategies (D19); None if none."""
    targets = [
        demand_target_kw(
            monthly_kw=s.over_demand_monthly_kw,
            month=month,
            dynamic_enabled=s.dynamic_enabled,
            dynamic_pct=s.dynamic_pct,
            dynamic_demand_kw=dynamic_demand_kw,
        )
        for s in strategies
    ]
    return min(targets) if targets else None


def over_demand_ceiling_kw(*, target_kw: float, buffer_kw: float) -> float:
    """The ceiling on grid power in kW that keeps import at T with a buffer inside (D20)."""
    return target_kw - buffer_kw
