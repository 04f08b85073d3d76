"""Why a meter's setpoints are what they are, in one line: the binding bound and the act.

Pure: from the frozen view, the goals, the decision and the buffer. The status snapshot
carries the line (``MeterStatus.reason``) and the engine logs it whenever it changes, e.g.

    anti-backflow: import 8.1 kW < baseline 10 + buffer 2 -> storage -4.0 kW, PV limit 120 kW

Figures are rounded to 0.1 kW, the resolution a gateway meter's power register gives.
Sign convention: grid + import; storage + discharge (so ``storage -4.0 kW`` charges).
"""

from __future__ import annotations

import math

from gridguard.control.controller import Decision
from gridguard.control.params import MeterGoals
from gridguard.control.view import MeterView

NEAR_KW = 0.5
"""Import within this of a bound counts as held at it (the bound is what binds)."""


def _kw(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".") if abs(value) >= 1e-9 else "0"


def _binding(view: MeterView, goals: MeterGoals, decision: Decision, buffer_kw: float) -> str:
    grid_kw = view.meter.grid_power_kw
    floor_kw, ceiling_kw = decision.bounds.floor_kw, decision.bounds.ceiling_kw
    phases = view.meter.phase_power_kw
    if math.isfinite(floor_kw) and grid_kw < floor_kw + NEAR_KW:
        base_floor = None if goals.streaming_kw is None else goals.streaming_kw + buffer_kw
        if (
            goals.phase_kw is not None
            and phases is not None
            and (base_floor is None or floor_kw > base_floor + 1e-6)
        ):
            worst = min(range(3), key=lambda i: phases[i])
            return (
                f"single-phase anti-backflow: phase {'ABC'[worst]} import {_kw(phases[worst])} kW"
                f" {'<' if phases[worst] < goals.phase_kw + buffer_kw else '~'} baseline"
                f" {_kw(goals.phase_kw)} + buffer {_kw(buffer_kw)}"
            )
        baseline = goals.streaming_kw or 0.0
        return (
            f"anti-backflow: import {_kw(grid_kw)} kW {'<' if grid_kw < floor_kw else '~'}"
            f" baseline {_kw(baseline)} + buffer {_kw(buffer_kw)}"
        )
    if math.isfinite(ceiling_kw) and grid_kw > ceiling_kw - NEAR_KW:
        level = decision.shave_kw if decision.shave_kw is not None else ceiling_kw + buffer_kw
        target = decision.target_kw
        raised = target is not None and level > target + 1e-6
        what = (
            f"level {_kw(level)} (T {_kw(target or 0.0)} cannot hold)"
            if raised
            else (f"target {_kw(level)}")
        )
        return (
            f"over-demand: import {_kw(grid_kw)} kW {'>' if grid_kw > ceiling_kw else '~'}"
            f" {what} - buffer {_kw(buffer_kw)}"
        )
    return f"within bounds: import {_kw(grid_kw)} kW"


def _acts(view: MeterView, decision: Decision) -> str:
    cmd = decision.command
    parts = [
        f"storage {_kw(kw)} kW"
        for kw, now in zip(cmd.storage_kw, view.storage, strict=True)
        if kw is not None and abs(kw - now.power_kw) >= NEAR_KW
    ]
    parts += [
        f"PV limit {_kw(kw)} kW"
        for kw, now in zip(cmd.pv_limit_kw, view.pv, strict=True)
        if kw is not None and kw < now.rated_kw - NEAR_KW
    ]
    parts += [
        f"pile limit {_kw(kw)} kW"
        for kw, now in zip(cmd.charger_limit_kw, view.chargers, strict=True)
        if kw is not None and now.connected and kw < now.power_kw - NEAR_KW
    ]
    return ", ".join(parts) if parts else "hold"


def explain(view: MeterView, goals: MeterGoals, decision: Decision, buffer_kw: float) -> str:
    """One line: the bound that binds (and why), then what the setpoints do about it."""
    if decision.failsafe:
        return f"fail-safe: no valid meter reading -> {_acts(view, decision)}"
    if not view.meter.valid:
        return "meter reading invalid: holding the setpoints"
    return f"{_binding(view, goals, decision, buffer_kw)} -> {_acts(view, decision)}"
