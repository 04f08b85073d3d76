"""Sharing one meter's correction over its device classes (D19) with the D20 control law.

Everything is decided in terms of each class's output at the *next* cycle. Feed-forward: the
uncontrolled load is the measured grid power plus the devices' present output, so the new
output follows from the bound directly (target = measured + current actuator power - bound).
A first-order actuator only covers the fraction ``alpha`` of a step within one cycle; the
split (``split.py``) pre-compensates that, and the reachable ranges here account for it, so
when one class cannot get there in time the next one in merit order covers the rest.

Order (D19): storage first; then PV (anti-backflow) or charging piles (over-demand).
Tightening acts at once; relaxing toward a class's resting point moves at most ``ramp_kw``
per cycle. Outputs that may rise without our knowing by how much (a curtailed inverter whose
limit is raised, a throttled pile whose limit is raised) are counted at their worst case.
The ceiling is enforced first and the floor last, so the floor wins a conflict (D19).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gridguard.control.laws.combine import Bounds
from gridguard.control.params import MeterGoals


@dataclass(frozen=True, slots=True)
class Spans:
    """Present output and reachable next-cycle range of each class, in kW."""

    storage_kw: float  # + discharge
    storage_low_kw: float  # lowest output reachable next cycle (hardest charge)
    storage_high_kw: float  # highest output reachable next cycle (hardest discharge)
    storage_neutral_kw: float  # where storage rests when no bound presses (D17: recharge)
    pv_kw: float
    pv_floor_kw: float  # lowest PV output reachable next cycle
    pv_release_room_kw: float  # curtailment in force that could be released
    pv_pending_kw: float  # worst-case rise next cycle of PV still catching up with its limit
    charger_kw: float
    charger_floor_kw: float  # lowest pile power reachable next cycle (all paused)
    charger_release_room_kw: float  # throttling in force that could be released
    charger_pending_kw: float  # worst-case rise next cycle of piles catching up with limits
    alpha: float  # fraction of a step an actuator covers in one cycle


@dataclass(frozen=True, slots=True)
class Plan:
    """Aggregate decision per class for the next cycle, in kW.

    ``pv_release_kw`` / ``charger_release_kw`` raise limits in force (the output follows with
    the actuator lag); ``pv_cut_kw`` / ``charger_cut_kw`` lower next cycle's output, a cut
    first stopping any rise still pending.
    """

    storage_next_kw: float
    pv_release_kw: float
    pv_cut_kw: float
    charger_release_kw: float
    charger_cut_kw: float


def _toward(value: float, goal: float, step: float) -> float:
    if goal > value:
        return min(goal, value + step)
    return max(goal, value - step)


def plan_dispatch(
    *,
    grid_power_kw: float,
    bounds: Bounds,
    goals: MeterGoals,
    spans: Spans,
    ramp_kw: float,
    recharge_ceiling_kw: float = math.inf,
) -> Plan:
    """Decide each class's next output so grid power stays within ``bounds``.

    ``recharge_ceiling_kw`` caps the import that refilling the battery may cause (D17: never
    lift import above T; a raised shaving level is for discharging, not for setting a new
    peak by charging).
    """
    s = spans
    neutral = min(max(s.storage_neutral_kw, s.storage_low_kw), s.storage_high_kw)
    y = min(max(_toward(s.storage_kw, neutral, ramp_kw), s.storage_low_kw), s.storage_high_kw)
    if y < 0.0:  # refilling (now or going on): no higher than the recharge ceiling
        cap = min(0.0, s.storage_kw + grid_power_kw - recharge_ceiling_kw)
        y = min(max(y, cap), s.storage_high_kw)
    rel_v = min(ramp_kw, s.pv_release_room_kw) if goals.pv_lo else 0.0
    rel_c = min(ramp_kw, s.charger_release_room_kw) if goals.charger_hi else 0.0
    cut_c = 0.0
    rise_c = s.charger_pending_kw + s.alpha * rel_c
    excess = grid_power_kw - (y - s.storage_kw) + rise_c - bounds.ceiling_kw
    if excess > 0.0:
        up = s.storage_high_kw if goals.storage_hi else max(y, neutral)
        y += (take := min(excess, max(0.0, up - y)))
        excess -= take
        excess -= (take := min(excess, s.alpha * rel_c))
        rel_c -= take / s.alpha
        if goals.charger_hi and excess > 0.0:
            room = s.charger_pending_kw + max(0.0, s.charger_kw - s.charger_floor_kw)
            cut_c = min(excess, room)
    cut_v = 0.0
    rise_v = s.pv_pending_kw + s.alpha * rel_v
    low = grid_power_kw - (y - s.storage_kw) - rise_v - max(0.0, cut_c - s.charger_pending_kw)
    deficit = bounds.floor_kw - low
    if deficit > 0.0:
        # D15: pile limits are not lowered while backflow threatens
        deficit -= (take := min(deficit, max(0.0, cut_c - s.charger_pending_kw)))
        cut_c -= take
        down = s.storage_low_kw if goals.storage_lo else min(y, neutral)
        y -= (take := min(deficit, max(0.0, y - down)))
        deficit -= take
        deficit -= (take := min(deficit, s.alpha * rel_v))
        rel_v -= take / s.alpha
        if goals.pv_lo and deficit > 0.0:
            cut_v = min(deficit, s.pv_pending_kw + max(0.0, s.pv_kw - s.pv_floor_kw))
    return Plan(y, rel_v, cut_v, rel_c, cut_c)
