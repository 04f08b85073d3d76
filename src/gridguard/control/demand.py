"""The demand meter (D17/D18): sliding-window average of grid import and the month's maximum.

Demand is computed as the utility meter does: import energy is summed per step (default
60 s); each time a step closes, demand = energy of the last ``window_s / step_s`` steps divided
by the window (default 900 s). There is no demand value until the first full window. The
month's maximum (``dynamic_demand``, D18) is the highest such value whose window ended in the
present month of the site's time zone; it resets at the month boundary, and ``export`` /
``restore`` carry it across restarts.

A sample at ``epoch_s`` stands for the ``dt_s`` seconds before it. Only import counts (export
is never negative demand). A step with less than half its time covered by valid samples breaks
the window (the meter was silent); a covered step is scaled up to the full step.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any
from zoneinfo import ZoneInfo

from gridguard.strategy.model import month_key


class DemandMeter:
    def __init__(self, *, window_s: int, step_s: int, zone: ZoneInfo) -> None:
        if window_s % step_s:
            raise ValueError("demand window must be a whole number of steps")
        self.window_s = window_s
        self.step_s = step_s
        self.zone = zone
        self._slots: deque[float] = deque(maxlen=window_s // step_s)
        self._step = -1
        self._energy_kwh = 0.0
        self._covered_s = 0.0
        self.month = -1
        self.demand_kw = 0.0
        self.month_max_kw = 0.0

    @property
    def step(self) -> int:
        """Index of the present step (epoch seconds // step_s)."""
        return self._step

    @property
    def partial(self) -> bool:
        """True until the window holds a full ``window_s`` of covered steps."""
        return len(self._slots) < (self._slots.maxlen or 0)

    @property
    def running_kw(self) -> float:
        """Average import over the steps of the window closed so far (kW).

        Equal to ``demand_kw`` once the window is full; before that (a fresh start, a month
        boundary, a silent meter) the partial average, so a demand is visible from the first
        step. Only full windows count for the month's maximum (D18).
        """
        if not self._slots:
            return 0.0
        return sum(self._slots) * 3600.0 / (len(self._slots) * self.step_s)

    def headroom_kw(self, level_kw: float) -> float:
        """The highest steady import from now on that keeps every window still holding part of
        the past at or below ``level_kw``: after a power-limited shave the window still holds
        the excess, and refilling at the level itself would set a new peak."""
        allowed_kwh = level_kw * self.window_s / 3600.0
        steps = self._slots.maxlen or 1
        left_s = max(self.step_s - self._covered_s, 0.0)
        closed = list(self._slots)
        best = level_kw  # the first window of new minutes only
        for m in range(steps):
            keep = steps - 1 - m
            old_kwh = self._energy_kwh + sum(closed[len(closed) - keep :] if keep else ())
            new_s = left_s + m * self.step_s
            if new_s > 0.0:
                best = min(best, (allowed_kwh - old_kwh) * 3600.0 / new_s)
        return best

    @property
    def month_of_year(self) -> int:
        """1..12, the site-local month of the present step."""
        return self.month % 12 + 1

    def add(self, grid_kw: float | None, dt_s: float, epoch_s: float) -> bool:
        """Account one sample (None = no valid reading); True when a step closed."""
        step = math.ceil(epoch_s / self.step_s) - 1
        closed = step != self._step
        if closed:
            self._close(step)
        if grid_kw is not None:
            if grid_kw > 0.0:
                self._energy_kwh += grid_kw * dt_s / 3600.0
            self._covered_s += dt_s
        return closed

    def _close(self, step: int) -> None:
        if self._step >= 0:
            if self._covered_s >= self.step_s / 2 and step == self._step + 1:
                self._slots.append(self._energy_kwh * self.step_s / self._covered_s)
                if len(self._slots) == self._slots.maxlen:
                    self.demand_kw = sum(self._slots) * 3600.0 / self.window_s
                    self.month_max_kw = max(self.month_max_kw, self.demand_kw)
            else:
                self._slots.clear()
        month = month_key(step * self.step_s, self.zone)
        if month != self.month:
            if self.month >= 0:
                self._slots.clear()
                self.month_max_kw = 0.0
                self.demand_kw = 0.0
            self.month = month
        self._step = step
        self._energy_kwh = 0.0
        self._covered_s = 0.0

    def export(self) -> dict[str, Any]:
        """JSON-able state for a StateStore."""
        return {
            "month": self.month,
            "month_max_kw": self.month_max_kw,
            "demand_kw": self.demand_kw,
            "step": self._step,
            "slots": list(self._slots),
            "energy_kwh": self._energy_kwh,
            "covered_s": self._covered_s,
        }

    def restore(self, state: dict[str, Any], epoch_s: float) -> None:
        """Take back an exported state if it is from the present month (and step)."""
        if int(state.get("month", -1)) != month_key(epoch_s, self.zone):
            return
        self.month = int(state["month"])
        self.month_max_kw = float(state.get("month_max_kw", 0.0))
        step = math.ceil(epoch_s / self.step_s) - 1
        if int(state.get("step", -1)) in (step, step - 1):
            self._slots.extend(float(v) for v in state.get("slots", []))
            self.demand_kw = float(state.get("demand_kw", 0.0))
            self._step = int(state["step"])
            self._energy_kwh = float(state.get("energy_kwh", 0.0))
            self._covered_s = float(state.get("covered_s", 0.0))
