"""The sun's rise still to come: a PV output that is climbing keeps climbing next cycle.

An inverter's output follows the sun with its own first-order lag: when a cloud passes, the
output covers ``alpha`` of the step in the first cycle and ``(1 - alpha)`` of the previous
cycle's rise in each cycle after. The feed-forward counts the output the readings show, so
each cycle the part of the climb still to come arrives unannounced and the grid dips below
the floor by about one cycle's rise (a third of it on each phase) — for several lag times
after the cloud edge, longer than the settle window. Rises of our own releases are counted
by ``owed.py``; a rise of the source's (the sun back under a limit we did not raise, or under
no limit at all) was counted nowhere.

``next_rise_kw`` predicts the next cycle's rise from the last two: the larger of the
first-order decay ``(1 - alpha)`` and the decay the readings show (``rise / previous rise``,
at most 1: a steady ramp goes on), never above the room to the limit. It is a worst case in
the floor's direction only (the sun may stop rising: a little more import, never export);
a cut first stops it (``split.pv_commands``: the limit is set to the present output).
Pure; the controller keeps the last outputs and rises (``Climb``).
"""

from __future__ import annotations

from dataclasses import dataclass

from gridguard.devices.protocols import PvReading

RISE_EPS_KW = 0.5
"""A rise this small is no climb (inverter jitter)."""


@dataclass(frozen=True, slots=True)
class Climb:
    """Per PV inverter, in view order: last cycle's output and its rise over the cycle, kW."""

    power_kw: tuple[float, ...] = ()
    rise_kw: tuple[float, ...] = ()


def next_rise_kw(
    *, rise_kw: float, prev_rise_kw: float, alpha: float, room_kw: float, ours: bool = False
) -> float:
    """The rise to expect next cycle from an output that rose ``rise_kw`` this cycle and
    ``prev_rise_kw`` the cycle before, with ``room_kw`` left to its limit. ``ours``: a
    release of ours is still owed (``owed.py``), so the rises are partly ours and their
    ratio says nothing of the lag (a release on top of a rise speeds it up)."""
    if rise_kw <= RISE_EPS_KW or room_kw <= 0.0:
        return 0.0
    decay = 1.0 - alpha
    if prev_rise_kw > RISE_EPS_KW and not ours:
        decay = max(decay, min(1.0, rise_kw / prev_rise_kw))
    return min(room_kw, rise_kw * decay)


def climbed(carried: Climb, pv: tuple[PvReading, ...], alpha: float) -> Climb:
    """This cycle's outputs and rises. A new inverter starts with no rise; one that has gone
    silent is taken to go on climbing as it was (its rise decaying by ``1 - alpha`` a cycle
    from its last known output): it is out of every sum, so a climb it was predicted to make
    would otherwise be dropped at once, and the storage's charge with it (the floor's worst
    case is that its output still rises)."""
    n = len(pv)
    fits = len(carried.power_kw) == n and len(carried.rise_kw) == n
    last = carried.power_kw if fits else tuple(r.power_kw for r in pv)
    rise = carried.rise_kw if fits else (0.0,) * n
    power: list[float] = []
    rises: list[float] = []
    for r, p, u in zip(pv, last, rise, strict=True):
        if r.online:
            power.append(r.power_kw)
            rises.append(r.power_kw - p)
        else:
            step = max(0.0, u) * (1.0 - alpha)
            power.append(p + step)
            rises.append(step)
    return Climb(power_kw=tuple(power), rise_kw=tuple(rises))


def rises_kw(
    before: Climb,
    now: Climb,
    pv: tuple[PvReading, ...],
    alpha: float,
    owed_kw: tuple[float, ...] | None = None,
) -> tuple[float, ...]:
    """Per inverter of ``pv`` (the view the decision is taken on), the rise to expect next
    cycle (a silent one's decaying as it was, ``climbed``). ``owed_kw``: what our releases
    still owe each (owed.py)."""
    n = len(pv)
    prev = before.rise_kw if len(before.rise_kw) == n else (0.0,) * n
    rise = now.rise_kw if len(now.rise_kw) == n else (0.0,) * n
    owed = owed_kw if owed_kw is not None and len(owed_kw) == n else (0.0,) * n
    return tuple(
        next_rise_kw(
            rise_kw=r_now,
            prev_rise_kw=r_prev,
            alpha=alpha,
            room_kw=r.limit_kw - r.power_kw,
            ours=o > 0.0,
        )
        if r.online
        else max(0.0, r_now) * (1.0 - alpha)
        for r, r_now, r_prev, o in zip(pv, rise, prev, owed, strict=True)
    )
