"""Bounds on grid power, and how the bounds of several strategies combine (D19).

Every law in this package turns a frozen measurement into a bound on the meter's grid power
(kW, + import): a *floor* (anti-backflow, D15/D16: import must stay at or above it) or a
*ceiling* (over-demand, D17: import must stay at or below it). On one meter the most
restrictive floor and the most restrictive ceiling win; when they cross, the floor wins,
because grid compliance beats economics (D19).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Bounds:
    """The allowed range of grid power in kW (+ import); +-inf when a side is free."""

    floor_kw: float = -math.inf
    ceiling_kw: float = math.inf


def combine_bounds(floors_kw: list[float], ceilings_kw: list[float]) -> Bounds:
    """Most restrictive floor and ceiling; the floor wins a conflict (D19)."""
    floor = max(floors_kw, default=-math.inf)
    ceiling = min(ceilings_kw, default=math.inf)
    return Bounds(floor_kw=floor, ceiling_kw=max(ceiling, floor))
