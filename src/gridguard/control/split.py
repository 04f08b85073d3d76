"""From readings to class spans, and from a class plan to one clamped setpoint per device.

``alpha`` is the fraction of a step a first-order actuator covers in one cycle (1 = no lag).
Storage, commanded every cycle, gets ``x + (y - x) / alpha`` to reach output ``y`` next cycle.
A PV or pile limit only caps an output whose source (sun, vehicle) we do not know, so limits
are raised by the release itself (the output follows with the lag; the rise still pending is
counted at its worst case), and lowered with the same pre-compensation as storage. Every
command is clamped to the device's range before it is written (D20): storage to
[-max_charge, max_discharge], PV limits to [0, rated]. Offline devices are left out of every
sum and get ``None`` (not written, D21).
"""

from __future__ import annotations

from gridguard.control.dispatch import Plan, Spans
from gridguard.control.params import MeterGoals
from gridguard.control.view import MeterRatings, MeterView
from gridguard.devices.protocols import PvReading

EPS_KW = 0.5  # an output this close to its limit is held by the limit


def gap_kw(power_kw: float, limit_kw: float, ramp_kw: float) -> float:
    """Rise still pending toward a limit we raised (gaps wider than a ramp are the source's)."""
    gap = limit_kw - power_kw
    return gap if EPS_KW < gap <= ramp_kw + EPS_KW else 0.0


def releasable(power_kw: float, limit_kw: float, rated_kw: float, ramp_kw: float) -> bool:
    """The limit holds the output back (or did until a release one ramp ago)."""
    return limit_kw < rated_kw - EPS_KW and power_kw >= limit_kw - ramp_kw - EPS_KW


def _pv_spans(pv: list[PvReading], alpha: float, ramp_kw: float) -> tuple[float, ...]:
    x_v = sum(r.power_kw for r in pv)
    return (
        x_v,
        x_v * (1.0 - alpha),
        sum(
            r.rated_kw - r.limit_kw
            for r in pv
            if releasable(r.power_kw, r.limit_kw, r.rated_kw, ramp_kw)
        ),
        alpha * sum(gap_kw(r.power_kw, r.limit_kw, ramp_kw) for r in pv),
    )


def class_spans(
    view: MeterView, ratings: MeterRatings, goals: MeterGoals, alpha: float, ramp_kw: float
) -> Spans:
    """Aggregate present outputs and next-cycle reachable ranges of each class."""
    units = [r for r in view.storage if r.online]
    x_s = sum(r.power_kw for r in units)
    if goals.storage_on:
        low = sum(r.power_kw + alpha * (-r.max_charge_kw - r.power_kw) for r in units)
        high = sum(r.power_kw + alpha * (r.max_discharge_kw - r.power_kw) for r in units)
        neutral = -sum(r.max_charge_kw for r in units) if goals.storage_hi else 0.0
    else:
        low = high = neutral = x_s * (1.0 - alpha)  # released to 0
    x_v, floor_v, room_v, pending_v = _pv_spans([r for r in view.pv if r.online], alpha, ramp_kw)
    piles = [
        (r, c)
        for r, c in zip(view.chargers, ratings.chargers, strict=True)
        if r.online and r.connected
    ]
    x_c = sum(r.power_kw for r, _ in piles)
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
            for r, c in piles
            if releasable(r.power_kw, r.limit_kw, c.rated_kw, ramp_kw) or r.limit_kw < c.min_kw
        ),
        charger_pending_kw=alpha * sum(gap_kw(r.power_kw, r.limit_kw, ramp_kw) for r, _ in piles),
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
        command = r.power_kw + (y - r.power_kw) / alpha
        out.append(min(max(command, -r.max_charge_kw), r.max_discharge_kw))
    return out


def pv_commands(
    view: MeterView, goals: MeterGoals, plan: Plan, spans: Spans, ramp_kw: float
) -> list[float | None]:
    """Cut: stop pending rises, then cut in proportion to output. Release: raise limits."""
    units = view.pv
    alpha = spans.alpha
    below_kw = max(0.0, plan.pv_cut_kw - spans.pv_pending_kw)  # cut below present output
    room = sum(
        r.rated_kw - max(r.limit_kw, r.power_kw)
        for r in units
        if r.online and releasable(r.power_kw, r.limit_kw, r.rated_kw, ramp_kw)
    )
    out: list[float | None] = []
    for r in units:
        if not r.online:
            out.append(None)
        elif not goals.pv_lo:
            out.append(r.rated_kw)
        elif plan.pv_cut_kw > 0.0:
            share = below_kw * r.power_kw / spans.pv_kw if spans.pv_kw > 0.0 else 0.0
            out.append(min(max(r.power_kw - share / alpha, 0.0), r.limit_kw, r.rated_kw))
        elif plan.pv_release_kw > 0.0 and releasable(r.power_kw, r.limit_kw, r.rated_kw, ramp_kw):
            base = max(r.limit_kw, r.power_kw)
            give = plan.pv_release_kw * (r.rated_kw - base) / room if room > 0.0 else 0.0
            out.append(min(base + give, r.rated_kw))
        else:  # hold: the output stays where it is (a falling one stops falling)
            out.append(min(max(r.limit_kw, r.power_kw, 0.0), r.rated_kw))
    return out
