"""Fail-safe (D21): what to write when the gateway meter has been silent for meter_timeout.

Without a valid grid reading no bound can be checked, so every class goes to the position that
is safe whatever the load does:

* anti-backflow on: PV goes to its fail-safe limit (``pv_failsafe_pct`` of rated, default 0 %),
  storage stops discharging;
* over-demand on: charging piles go to their minimum, storage stops charging from the grid.

Storage with both goals therefore stops. Classes without a goal rest as in normal control.
Normal control resumes, ramping from these positions, when readings return.
"""

from __future__ import annotations

from gridguard.control.params import MeterGoals
from gridguard.control.view import Command, MeterRatings, MeterView


def failsafe_command(
    view: MeterView, ratings: MeterRatings, goals: MeterGoals, *, pv_failsafe_pct: float
) -> Command:
    """Setpoints that keep the meter safe without knowing its power."""
    storage: list[float | None] = []
    for r in view.storage:
        if not r.online:
            storage.append(None)
            continue
        kw = r.power_kw if goals.storage_on else 0.0
        if goals.storage_lo:
            kw = min(kw, 0.0)
        if goals.storage_hi:
            kw = max(kw, 0.0)
        storage.append(min(max(kw, -r.max_charge_kw), r.max_discharge_kw))
    pv = [
        None
        if not r.online
        else r.rated_kw * pv_failsafe_pct / 100.0
        if goals.pv_lo
        else r.rated_kw
        for r in view.pv
    ]
    piles = [
        None if not r.online else c.min_kw if goals.charger_hi else c.rated_kw
        for r, c in zip(view.chargers, ratings.chargers, strict=True)
    ]
    return Command(storage_kw=tuple(storage), pv_limit_kw=tuple(pv), charger_limit_kw=tuple(piles))
