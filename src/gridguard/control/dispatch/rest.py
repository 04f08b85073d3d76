"""The energy policy: where storage rests when no bound presses, and why.

Resting full whenever over-demand is on wastes PV: a full battery cannot take the surplus, so
it is curtailed (finding 3). Instead the battery rests at an energy chosen from the forecast
(``resting_kwh``): full, less the room the PV surplus expected over the next 24 h needs, but
never below the *reserve* that holding the guarded level needs (``planner.reserve_kwh``, with
a margin for forecast errors). Then:

* below that energy it refills from the grid (capped so refilling sets no new peak);
* within ``band_kwh`` of it, it holds (no grid charging, no discharge);
* above it, it serves the site's own load (discharges toward the floor plus a buffer, never
  exporting), which leaves room for the PV surplus to come; surplus PV charges it whatever
  the mode, through the anti-backflow floor. While PV is curtailed it holds instead: releasing
  the curtailment serves the load first.

While the forecast is not learned (the first day of each kind) the reserve is unknown and the
battery rests full, as before. With anti-backflow only there is no reserve to keep.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Rest:
    kw: float | None  # None: the plain rule (full recharge)
    reason: str


def resting(
    *,
    storage_kw: float,
    grid_kw: float,
    floor_kw: float,
    buffer_kw: float,
    stored_kwh: float,
    target_kwh: float | None,
    band_kwh: float,
    pv_curtailed: bool = False,
) -> Rest:
    """Where storage rests next: a discharge (kW, >= 0), 0, or None for full recharge."""
    if target_kwh is None:
        return Rest(None, "full: forecast not learned yet")
    if stored_kwh < target_kwh - band_kwh:
        return Rest(None, "refill to the resting energy")
    if stored_kwh < target_kwh + band_kwh or pv_curtailed:
        return Rest(0.0, "hold" if not pv_curtailed else "PV curtailed: release it first")
    target = (floor_kw if math.isfinite(floor_kw) else 0.0) + buffer_kw
    return Rest(max(0.0, storage_kw + grid_kw - target), "serve the site's load")


def resting_kwh(
    *, full_kwh: float, reserve_kwh: float | None, surplus_kwh: float, over_demand: bool
) -> float | None:
    """The energy to rest at: full, less the room the expected PV surplus needs, but never
    below the demand reserve (with a 25 % margin and 5 % of the window for forecast errors).
    None while over-demand needs a forecast that is not learned yet."""
    if not over_demand:
        return max(0.0, full_kwh - surplus_kwh)
    if reserve_kwh is None:
        return None
    keep = min(full_kwh, 1.25 * reserve_kwh + 0.05 * full_kwh)
    return max(keep, full_kwh - surplus_kwh)
