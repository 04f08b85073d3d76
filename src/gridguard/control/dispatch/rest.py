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
  the curtailment serves the load first. Serving takes the grid toward the floor by choice, so
  it never counts on the meter being on time (``serving_kw``).

While the forecast is not learned (the first day of each kind, and every real site's first
days) there is no surplus forecast and no learned reserve, so the policy works from what the
day shows (``provisional_kwh``): while the PV is up and still in the morning half of its daily
course (``pv_morning``), the surplus of the day is still to come, and the battery rests at full
less the room that surplus could need (``surplus_room_kwh``: the PV's rating above the least
site load seen today, for two hours), but never below a provisional reserve: what holding the
guarded level would need if the present net load persisted (the planner's persistence
forecast), with the same margins, and never below ``MIN_RESERVE_SHARE`` of the window. Above
it, it serves the site's load, which makes room for the surplus. Outside the PV's morning
(night, afternoon, evening) it rests full, as before: the evening peak and the next morning are
what the energy is kept for. With anti-backflow only there is no reserve to keep.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gridguard.control.dispatch.inflight import MAX_DELAY


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
    unseen_kw: float = 0.0,
) -> Rest:
    """Where storage rests next: a discharge (kW, >= 0), 0, or None for full recharge.

    Serving moves the grid toward the floor by choice, so it never counts on the meter being
    on time: ``unseen_kw`` (the discharge rises asked over the last ``UNSEEN_CYCLES``) may not
    show on the meter yet, and a further rise is asked only for what is left beyond them
    (``serving_kw``)."""
    if target_kwh is None:
        return Rest(None, "full: forecast not learned yet")
    if stored_kwh < target_kwh - band_kwh:
        return Rest(None, "refill to the resting energy")
    if stored_kwh < target_kwh + band_kwh or pv_curtailed:
        return Rest(0.0, "hold" if not pv_curtailed else "PV curtailed: release it first")
    target = (floor_kw if math.isfinite(floor_kw) else 0.0) + buffer_kw
    return Rest(
        serving_kw(storage_kw=storage_kw, gap_kw=grid_kw - target, unseen_kw=unseen_kw),
        "serve the site's load",
    )


UNSEEN_CYCLES = MAX_DELAY
"""Cycles a discharge rise may take to show on the meter: the longest meter or setpoint delay
the identifiers take (``latency.py``, ``inflight.py``). Until one is identified (a battery
idle all night gives no evidence), a move is counted twice by the feed-forward."""


def serving_kw(*, storage_kw: float, gap_kw: float, unseen_kw: float) -> float:
    """The discharge to serve the load at: ``gap_kw`` (import above the serving target) more
    than now, less the rises asked lately that the meter may not show yet; never a rise below
    the present output for that (the next cycle's meter tells), a fall at once."""
    if gap_kw <= 0.0:
        return max(0.0, storage_kw + gap_kw)
    return max(0.0, storage_kw + max(0.0, gap_kw - unseen_kw))


PV_MORNING_END_H = 12.0
"""Local hour at which the PV's morning ends (local noon; solar noon is 12:00-13:30 local in
most zones, summer time included): from then on the battery rests full again, refilling from
the grid where the window allows, so the afternoon's peak finds it full whatever the PV does."""
SUN_UP_SHARE = 0.05
"""PV output, as a share of its rating, above which the sun counts as up."""
MIN_RESERVE_SHARE = 0.25
"""Least share of the SOC window a provisional reserve keeps for demand protection."""
SURPLUS_H = 2.0
"""Hours of the PV's possible surplus (rating less the least load) the room is made for."""


def pv_morning(*, pv_kw: float, rated_kw: float, local_hour: float) -> bool:
    """The PV is up and in the morning half of its daily course: its surplus is still to come."""
    return rated_kw > 0.0 and pv_kw >= SUN_UP_SHARE * rated_kw and local_hour < PV_MORNING_END_H


def surplus_room_kwh(*, pv_rated_kw: float, least_load_kw: float) -> float:
    """Room the PV surplus could need without a forecast: what the PV at its rating could give
    above the least site load seen today, for ``SURPLUS_H`` (a PV smaller than the site's load
    has no surplus to make room for)."""
    return max(0.0, pv_rated_kw - least_load_kw) * SURPLUS_H


def provisional_kwh(
    *, full_kwh: float, persisted_kwh: float, room_kwh: float, morning: bool
) -> float | None:
    """The energy to rest at without a learned forecast: during the PV's morning, full less the
    room the possible surplus needs, but never below the reserve the present net load would
    need if it persisted (25 % margin + 5 % of the window), nor ``MIN_RESERVE_SHARE`` of the
    window; None (full) otherwise."""
    if not morning:
        return None
    keep = max(MIN_RESERVE_SHARE * full_kwh, 1.25 * persisted_kwh + 0.05 * full_kwh)
    return min(full_kwh, max(keep, full_kwh - room_kwh))


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
