"""Single-phase anti-backflow (单相防逆流, D16): keep every phase's import at or above Y.

Sign convention: phase power + import. Storage, PV and piles are three-phase: moving one of
them by D kW moves each phase by D/3. To lift the worst phase by its deficit, the total must
therefore move by 3 x that deficit, so the law yields a floor on *total* grid power that
combines with the other bounds like any other (D19):

    floor = grid_power + 3 * (Y + buffer - min(phase_power))
"""

from __future__ import annotations


def phase_floor_kw(
    *,
    grid_power_kw: float,
    phase_power_kw: tuple[float, float, float],
    phase_kw: float,
    buffer_kw: float,
) -> float:
    """The floor on total grid power in kW that keeps the worst phase at >= ``phase_kw``."""
    worst_kw = min(phase_power_kw)
    return grid_power_kw + 3.0 * (phase_kw + buffer_kw - worst_kw)
