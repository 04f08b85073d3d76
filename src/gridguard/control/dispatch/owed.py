"""Rise still owed to the limits we raised (PV inverters, charging piles), carried over cycles.

A raised limit is followed with the actuator lag: the output covers only ``alpha`` of the gap
(limit - output) per cycle. At 1 s and a 1 s lag that leaves a gap within one relax ramp one
cycle later, which ``split.gap_kw`` counts as pending; at 200 ms (alpha 0.18) the gap a release
opens stays wider than a ramp for several cycles and was taken for the source's (less sun, a
vehicle drawing less), so the output rose unannounced and import dipped below the floor (D15).

A gap can be ours or the source's, and the readings cannot tell which, so the controller
remembers what it raised: ``owed`` is the part of each gap our releases opened, shrinking by
``1 - alpha`` per cycle as a following output covers it, never more than the gap seen. A gap
that is really the source's is thus forgotten within a few lag times. Pure functions; the
controller keeps the value between cycles (``None`` device entries mean "not written").
"""

from __future__ import annotations

from dataclasses import dataclass

from gridguard.control.view import Command, MeterView
from gridguard.devices.protocols import ChargerReading, PvReading

Limits = tuple[float | None, ...]
NOTHING_KW = 0.01  # owed below this is nothing: the controller then carries None


@dataclass(frozen=True, slots=True)
class Owed:
    """Per device, in view order: the part of (limit - output) our releases opened, kW >= 0.

    ``None`` in place of an ``Owed`` means nothing is owed (most cycles: the path stays lean).
    """

    pv_kw: tuple[float, ...] = ()
    charger_kw: tuple[float, ...] = ()


def _gap(power_kw: float, limit_kw: float) -> float:
    return max(0.0, limit_kw - power_kw)


def _fit(values: tuple[float, ...], n: int) -> tuple[float, ...]:
    return values if len(values) == n else (0.0,) * n


def owed_now(carried: Owed | None, view: MeterView, alpha: float) -> Owed | None:
    """What is still owed at this cycle: last cycle's, less what the output covered since."""
    if carried is None:
        return None
    keep = 1.0 - alpha
    pv = tuple(
        min(o * keep, _gap(r.power_kw, r.limit_kw)) if r.online else 0.0
        for o, r in zip(_fit(carried.pv_kw, len(view.pv)), view.pv, strict=True)
    )
    piles = tuple(
        min(o * keep, _gap(r.power_kw, r.limit_kw)) if r.online and r.connected else 0.0
        for o, r in zip(_fit(carried.charger_kw, len(view.chargers)), view.chargers, strict=True)
    )
    if max(pv, default=0.0) < NOTHING_KW and max(piles, default=0.0) < NOTHING_KW:
        return None
    return Owed(pv, piles)


def _after(owed_kw: float, power_kw: float, limit_kw: float, written: float | None) -> float:
    if written is None:
        return owed_kw
    base = max(limit_kw, power_kw)
    if written > base:  # a release: all of it is ours
        return min(owed_kw, _gap(power_kw, limit_kw)) + written - base
    return min(owed_kw, _gap(power_kw, written))  # hold or cut


def _raised(readings: tuple[PvReading | ChargerReading, ...], written: Limits) -> bool:
    for r, w in zip(readings, written, strict=True):
        if w is not None and w > r.limit_kw and w > r.power_kw:
            return True
    return False


def owed_after(owed: Owed | None, view: MeterView, command: Command) -> Owed | None:
    """What the limits just written leave owed (before the output moves)."""
    if owed is None:
        if not _raised(view.pv, command.pv_limit_kw) and not _raised(
            view.chargers, command.charger_limit_kw
        ):
            return None
        owed = Owed((0.0,) * len(view.pv), (0.0,) * len(view.chargers))
    return Owed(
        pv_kw=tuple(
            _after(o, r.power_kw, r.limit_kw, w)
            for o, r, w in zip(owed.pv_kw, view.pv, command.pv_limit_kw, strict=True)
        ),
        charger_kw=tuple(
            _after(o, r.power_kw, r.limit_kw, w)
            for o, r, w in zip(
                owed.charger_kw, view.chargers, command.charger_limit_kw, strict=True
            )
        ),
    )
