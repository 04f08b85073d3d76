"""Why a decision is what it is: the binding bound, the planner's level and its reason, the
forecast and the energy budget, PV delivered vs held back, the window's running demand; and
the events worth telling (the level moved, a new month maximum, the battery cannot hold T).

Pure: the controller fills an :class:`Explanation` per decision; the status snapshot carries
it and the engine turns the notes into events.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gridguard.control.laws.combine import Bounds

NEAR_KW = 1.0  # grid within this of a bound (plus the buffer) means the bound binds


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
