"""Why a decision is what it is: the binding bound, the planner's level and its reason, the
forecast and the energy budget, PV delivered vs held back, the window's running demand; and
the events worth telling (the level moved, a new month maximum, the battery cannot hold T).

Pure: the controller fills an :class:`Explanation` per decision; the status snapshot carries
it and the engine turns the notes into events. :func:`reason_line` renders the same
explanation as one line (``MeterStatus.reason``, and one debug log line whenever it changes),
so the line and the structured fields never disagree on what binds, e.g.

    anti-backflow: import 8.1 kW < baseline 10 + buffer 2 -> storage -4 kW, PV limit 120 kW

Line figures are rounded to 0.1 kW, the resolution a gateway meter's power register gives.
Sign convention: grid + import; storage + discharge (so ``storage -4 kW`` charges).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gridguard.control.laws.combine import Bounds

if TYPE_CHECKING:
    from gridguard.control.controller import Decision
    from gridguard.control.params import MeterGoals
    from gridguard.control.view import MeterView

NEAR_KW = 1.0  # grid within this of a bound (plus the buffer) means the bound binds
ACT_KW = 0.5  # a setpoint this far from the present output is an act worth naming


@dataclass(frozen=True, slots=True)
class Explanation:
    binding: str | None = None  # "anti-backflow", "phase", "over-demand", or None (free)
    binding_phase: str | None = None  # "A", "B" or "C" when a phase floor binds
    level_kw: float | None = None  # the guarded level (T, or the planner's)
    level_reason: str = ""
    forecast_peak_kw: float | None = None  # highest net load forecast over the next 24 h
    stored_kwh: float = 0.0  # energy above soc_min, in the cells
    reserve_kwh: float | None = None  # what holding the level needs (None: not learned)
    rest_reason: str = ""
    pv_kw: float = 0.0  # PV delivered now
    pv_held_back_kw: float = 0.0  # curtailment in force (gap to the rating: an upper bound)
    window_running_kw: float = 0.0  # running average of the 15-min window (D17)
    buffer_kw: float = 0.0  # the binding bound's margin (a floor's may be sized from noise)
    notes: tuple[tuple[str, str], ...] = ()  # (event kind, message)


EMPTY = Explanation()


def binding_bound(
    grid_kw: float,
    bounds: Bounds,
    *,
    floor_source: str | None,
    buffer_kw: float,
) -> str | None:
    """Which bound the grid sits at, if any (the floor wins a tie, D19)."""
    if math.isfinite(bounds.floor_kw) and grid_kw <= bounds.floor_kw + buffer_kw + NEAR_KW:
        return floor_source
    if math.isfinite(bounds.ceiling_kw) and grid_kw >= bounds.ceiling_kw - NEAR_KW:
        return "over-demand"
    return None


@dataclass
class Narrator:
    """Remembers what was last told, so a note is made only when something moved."""

    level_kw: float | None = None
    month_max_kw: float = 0.0
    cannot_hold: bool = False

    def notes(
        self, *, level_kw: float | None, target_kw: float | None, month_max_kw: float, reason: str
    ) -> tuple[tuple[str, str], ...]:
        out: list[tuple[str, str]] = []
        if level_kw is not None and (self.level_kw is None or abs(level_kw - self.level_kw) >= 1.0):
            if self.level_kw is not None:
                out.append(
                    (
                        "level_moved",
                        f"guarded level {self.level_kw:.1f} -> {level_kw:.1f} kW: {reason}",
                    )
                )
            self.level_kw = level_kw
        if month_max_kw > self.month_max_kw + 0.05:
            out.append(("new_month_max", f"new month maximum demand {month_max_kw:.1f} kW"))
            self.month_max_kw = month_max_kw
        short = target_kw is not None and level_kw is not None and level_kw > target_kw + 0.5
        if short and not self.cannot_hold:
            out.append(("cannot_hold_target", f"battery cannot hold T = {target_kw:.1f} kW"))
        self.cannot_hold = short
        return tuple(out)


def _kw(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".") if abs(value) >= 0.05 else "0"


def _bound_text(view: MeterView, goals: MeterGoals, decision: Decision) -> str:
    """The binding bound (as :func:`binding_bound` found it) with its figures."""
    e = decision.explain
    grid_kw = view.meter.grid_power_kw
    phases = view.meter.phase_power_kw
    buffer = _kw(e.buffer_kw)
    if e.binding == "phase" and goals.phase_kw is not None and phases is not None:
        i = "ABC".index(e.binding_phase or "A")
        below = phases[i] < goals.phase_kw + e.buffer_kw
        return (
            f"single-phase anti-backflow: phase {'ABC'[i]} import {_kw(phases[i])} kW"
            f" {'<' if below else '~'} baseline {_kw(goals.phase_kw)} + buffer {buffer}"
        )
    if e.binding == "anti-backflow":
        below = grid_kw < decision.bounds.floor_kw
        return (
            f"anti-backflow: import {_kw(grid_kw)} kW {'<' if below else '~'}"
            f" baseline {_kw(goals.streaming_kw or 0.0)} + buffer {buffer}"
        )
    if e.binding == "over-demand":
        ceiling_kw = decision.bounds.ceiling_kw
        level = decision.shave_kw if decision.shave_kw is not None else ceiling_kw + e.buffer_kw
        target = decision.target_kw
        what = (
            f"level {_kw(level)} (T {_kw(target)} cannot hold)"
            if target is not None and level > target + 1e-6
            else f"target {_kw(level)}"
        )
        return (
            f"over-demand: import {_kw(grid_kw)} kW {'>' if grid_kw > ceiling_kw else '~'}"
            f" {what} - buffer {buffer}"
        )
    return f"within bounds: import {_kw(grid_kw)} kW"


def _acts(view: MeterView, decision: Decision) -> str:
    cmd = decision.command
    parts = [
        f"storage {_kw(kw)} kW"
        for kw, now in zip(cmd.storage_kw, view.storage, strict=True)
        if kw is not None and abs(kw - now.power_kw) >= ACT_KW
    ]
    parts += [
        f"PV limit {_kw(kw)} kW"
        for kw, now in zip(cmd.pv_limit_kw, view.pv, strict=True)
        if kw is not None and kw < now.rated_kw - ACT_KW
    ]
    parts += [
        f"pile limit {_kw(kw)} kW"
        for kw, now in zip(cmd.charger_limit_kw, view.chargers, strict=True)
        if kw is not None and now.connected and kw < now.power_kw - ACT_KW
    ]
    return ", ".join(parts) if parts else "hold"


def reason_line(view: MeterView, goals: MeterGoals, decision: Decision) -> str:
    """One line: the bound that binds (and why), then what the setpoints do about it."""
    if decision.failsafe:
        return f"fail-safe: no valid meter reading -> {_acts(view, decision)}"
    if not view.meter.valid:
        return "meter reading invalid: holding the setpoints"
    return f"{_bound_text(view, goals, decision)} -> {_acts(view, decision)}"
