"""From readings to class spans, and from a class plan to one clamped setpoint per device.

``alpha`` is the fraction of a step a first-order actuator covers in one cycle (1 = no lag).
Storage, commanded every cycle, gets ``x + (y - x) / alpha`` to reach output ``y`` next cycle.
A PV or pile limit only caps an output whose source (sun, vehicle) we do not know, so limits
are raised by the release itself (the output follows with the lag; the rise still pending is
counted at its worst case: a gap within one ramp, or what our releases still owe, ``owed.py``),
and lowered with the same pre-compensation as storage. Every
command is clamped to the device's range before it is written (D20): storage to
[-max_charge, max_discharge], PV limits to [0, rated]. Offline devices are left out of every
sum and get ``None`` (not written, D21).
"""

from __future__ import annotations

import math
from dataclasses import replace

from gridguard.control.dispatch.merit import Plan, Spans
from gridguard.control.dispatch.owed import Owed
from gridguard.control.params import MeterGoals
from gridguard.control.view import MeterRatings, MeterView
from gridguard.devices.protocols import PvReading, StorageReading

EPS_KW = 0.5  # an output this close to its limit is held by the limit


def gap_kw(power_kw: float, limit_kw: float, ramp_kw: float, owed_kw: float = 0.0) -> float:
    """Rise still pending toward a limit we raised: a gap within one ramp, or the part of a
    wider gap that our own releases still owe (``owed.py``); the rest is the source's."""
    gap = limit_kw - power_kw
    if EPS_KW < gap <= ramp_kw + EPS_KW:
        return gap
    if owed_kw <= 0.0 or gap <= 0.0:
        return 0.0
    return min(gap, owed_kw)


def releasable(
    power_kw: float, limit_kw: float, rated_kw: float, ramp_kw: float, owed_kw: float = 0.0
) -> bool:
    """The limit holds the output back (or did until a release one ramp ago, or the whole gap
    is still owed to our releases: the output is catching up, not held by its source)."""
    gap = limit_kw - power_kw
    return limit_kw < rated_kw - EPS_KW and (gap <= ramp_kw + EPS_KW or owed_kw >= gap - EPS_KW)


def _pv_spans(
    pv: list[tuple[PvReading, float, float]], alpha: float, ramp_kw: float
) -> tuple[float, ...]:
    """Output, lowest next-cycle output, release room, and the rise pending next cycle: the
    larger of what our releases leave (a gap within a ramp, or owed) and the climb still to
    come (``rise.py``)."""
    x_v = sum(r.power_kw for r, _, _ in pv)
    return (
        x_v,
        x_v * (1.0 - alpha),
        sum(
            r.rated_kw - r.limit_kw
            for r, owed, _ in pv
            if releasable(r.power_kw, r.limit_kw, r.rated_kw, ramp_kw, owed)
        ),
        sum(
            max(alpha * gap_kw(r.power_kw, r.limit_kw, ramp_kw, owed), rise) for r, owed, rise in pv
        ),
    )


def class_spans(
    view: MeterView,
    ratings: MeterRatings,
    goals: MeterGoals,
    alpha: float,
    ramp_kw: float,
    *,
    owed: Owed | None = None,
    rest_kw: float | None = None,
    pv_rise_kw: tuple[float, ...] | None = None,
) -> Spans:
    """Aggregate present outputs and next-cycle reachable ranges of each class.

    ``rest_kw`` is where storage rests when no bound presses (the energy policy); None keeps
    the plain rule: full recharge with over-demand on, 0 otherwise. ``pv_rise_kw`` is each
    inverter's climb expected next cycle (``rise.py``); None: none counted."""
    pv_owed = owed.pv_kw if owed else (0.0,) * len(view.pv)
    pv_rise = pv_rise_kw if pv_rise_kw is not None else (0.0,) * len(view.pv)
    pile_owed = owed.charger_kw if owed else (0.0,) * len(view.chargers)
    units = [r for r in view.storage if r.online]
    x_s = sum(r.power_kw for r in units)
    if goals.storage_on:
        # a BMS limit binds at once (the PCS clamps), the lag only slows a move within it
        low = sum(
            max(r.power_kw + alpha * (-r.max_charge_kw - r.power_kw), -r.max_charge_kw)
            for r in units
        )
        high = sum(
            min(r.power_kw + alpha * (r.max_discharge_kw - r.power_kw), r.max_discharge_kw)
            for r in units
        )
        neutral = -sum(r.max_charge_kw for r in units) if goals.storage_hi else 0.0
        if rest_kw is not None:
            neutral = rest_kw
    else:
        low = high = neutral = x_s * (1.0 - alpha)  # released to 0
    x_v, floor_v, room_v, pending_v = _pv_spans(
        [(r, o, u) for r, o, u in zip(view.pv, pv_owed, pv_rise, strict=True) if r.online],
        alpha,
        ramp_kw,
    )
    # a silent inverter is out of every sum but its climb (rise.py): the floor's worst case
    pending_v += sum(u for r, u in zip(view.pv, pv_rise, strict=True) if not r.online)
    piles = [
        (r, c, o)
        for r, c, o in zip(view.chargers, ratings.chargers, pile_owed, strict=True)
        if r.online and r.connected
    ]
    x_c = sum(r.power_kw for r, _, _ in piles)
    return Spans(
        storage_kw=x_s,
        storage_low_kw=low,
        storage_high_kw=high,
        storage_neutral_kw=neutral,
        pv_kw=x_v,
        pv_floor_kw=floor_v,
        pv_release_room_kw=room_v,
        pv_pending_kw=pending_v,
        charger_kw=x_c,
        charger_floor_kw=x_c * (1.0 - alpha),
        charger_release_room_kw=sum(
            c.rated_kw - max(r.limit_kw, r.power_kw)
            for r, c, o in piles
            if releasable(r.power_kw, r.limit_kw, c.rated_kw, ramp_kw, o) or r.limit_kw < c.min_kw
        ),
        charger_pending_kw=alpha
        * sum(gap_kw(r.power_kw, r.limit_kw, ramp_kw, o) for r, _, o in piles),
        alpha=alpha,
    )


def storage_commands(
    view: MeterView, goals: MeterGoals, plan: Plan, alpha: float
) -> list[float | None]:
    """Share the storage target over the online units by their room to move."""
    units = view.storage
    x_s = sum(r.power_kw for r in units if r.online)
    move = plan.storage_next_kw - x_s
    if move >= 0.0:
        rooms = [alpha * max(0.0, r.max_discharge_kw - r.power_kw) for r in units]
    else:
        rooms = [alpha * max(0.0, r.power_kw + r.max_charge_kw) for r in units]
    total = sum(room for room, r in zip(rooms, units, strict=True) if r.online)
    out: list[float | None] = []
    for room, r in zip(rooms, units, strict=True):
        if not r.online:
            out.append(None)
            continue
        if not goals.storage_on:
            out.append(0.0)
            continue
        y = r.power_kw + (move * room / total if total > 0.0 else 0.0)
        base = min(max(r.power_kw, -r.max_charge_kw), r.max_discharge_kw)  # the BMS clamps now
        command = base + (y - base) / alpha
        out.append(min(max(command, -r.max_charge_kw), r.max_discharge_kw))
    return out


def pv_commands(
    view: MeterView,
    goals: MeterGoals,
    plan: Plan,
    spans: Spans,
    ramp_kw: float,
    *,
    owed: Owed | None = None,
) -> list[float | None]:
    """Cut: stop pending rises, then cut in proportion to output. Release: raise limits."""
    units = view.pv
    alpha = spans.alpha
    below_kw = max(0.0, plan.pv_cut_kw - spans.pv_pending_kw)  # cut below present output
    held = [False] * len(units)
    room = 0.0
    if goals.pv_lo and plan.pv_cut_kw <= 0.0 < plan.pv_release_kw:
        owed_kw = owed.pv_kw if owed else (0.0,) * len(units)
        held = [
            r.online and releasable(r.power_kw, r.limit_kw, r.rated_kw, ramp_kw, o)
            for r, o in zip(units, owed_kw, strict=True)
        ]
        room = sum(
            r.rated_kw - max(r.limit_kw, r.power_kw) for r, h in zip(units, held, strict=True) if h
        )
    out: list[float | None] = []
    for r, h in zip(units, held, strict=True):
        if not r.online:
            out.append(None)
        elif not goals.pv_lo:
            out.append(r.rated_kw)
        elif plan.pv_cut_kw > 0.0:
            share = below_kw * r.power_kw / spans.pv_kw if spans.pv_kw > 0.0 else 0.0
            out.append(min(max(r.power_kw - share / alpha, 0.0), r.limit_kw, r.rated_kw))
        elif h:  # a release, and this limit holds its output back
            base = max(r.limit_kw, r.power_kw)
            give = plan.pv_release_kw * (r.rated_kw - base) / room if room > 0.0 else 0.0
            out.append(min(base + give, r.rated_kw))
        else:  # hold: the output stays where it is (a falling one stops falling)
            out.append(min(max(r.limit_kw, r.power_kw, 0.0), r.rated_kw))
    return out


def energy_limited(
    view: MeterView, ratings: MeterRatings, horizon_s: float, ahead_s: float = 0.0
) -> MeterView:
    """The view with each unit's max charge (discharge) capped by the energy room (store)
    left in its SOC window spread over ``horizon_s`` (a period plus the actuator lag): a BMS
    that reports full power until the very top stops the charge within one cycle, faster
    than a lagging PV inverter can be curtailed, and the difference is exported (finding 4).
    So the charge tapers as the room runs out, at the pace the PV can take over. ``ahead_s``
    is how long the setpoints in flight act before this cycle's does (``inflight.py``): the
    present output goes on that long, and the room is what is left after it."""
    hours = horizon_s / 3600.0
    ahead_h = ahead_s / 3600.0
    units: list[StorageReading] = []
    for r, rating in zip(view.storage, ratings.storage, strict=True):
        per_pct = rating.capacity_kwh / 100.0
        eta = math.sqrt(rating.efficiency)
        room_kwh = max(0.0, rating.soc_max_pct - r.soc_pct) * per_pct / eta
        stored_kwh = max(0.0, r.soc_pct - rating.soc_min_pct) * per_pct * eta
        room_kw = max(0.0, room_kwh - max(0.0, -r.power_kw) * ahead_h) / hours
        stored_kw = max(0.0, stored_kwh - max(0.0, r.power_kw) * ahead_h) / hours
        units.append(
            replace(
                r,
                max_charge_kw=min(r.max_charge_kw, room_kw),
                max_discharge_kw=min(r.max_discharge_kw, stored_kw),
            )
        )
    return replace(view, storage=tuple(units))
