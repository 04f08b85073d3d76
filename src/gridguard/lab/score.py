"""The bench's metrics, accumulated step by step over one closed-loop run.

Backflow is counted against the total baseline X (when anti-backflow is on) and against the
per-phase condition Y (when single-phase anti-backflow is on), all seconds and those outside
the settle window (2 cycles + the actuator lag + the meter and command delays after a
disturbance: a step of the uncontrolled net load bigger than ``step_kw`` within one second).
A phase has its own window besides: a step of that phase's uncontrolled load (its load less a
third of the PV available plus a third of the vehicles) bigger than ``step_kw`` disturbs it
even when the other phases take the step back and the total does not move (a single-phase
welder switching while another phase's load drops: no controller sees it coming).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gridguard.control.controller import Decision
from gridguard.control.demand import DemandMeter
from gridguard.plant.model import PlantInputs, PlantState

DISTURBANCE_KW = 0.5
Progress = Callable[[str], None]
"""Where progress lines go (stderr in the CLI); the table or JSON alone goes to stdout."""


class Ticker:
    """Progress of one closed-loop run: a line every ``every_pct`` % of the steps."""

    def __init__(self, label: str, total_steps: int, out: Progress, every_pct: int = 10) -> None:
        self.label = label
        self.total = max(total_steps, 1)
        self.out = out
        self.every_pct = every_pct
        self.began = time.perf_counter()
        self.due = self._step_reaching(every_pct)
        out(f"{label}: started, {total_steps} steps")

    def _step_reaching(self, pct: int) -> int:
        """Index of the step whose end completes ``pct`` % (no report at 100: ``done``)."""
        return -(-self.total * pct // 100) - 1 if pct < 100 else sys.maxsize

    def tick(self, t: int) -> int:
        """Step ``t`` completed a share that is due: report it; the next step due."""
        pct = (t + 1) * 100 // self.total
        self.out(f"{self.label}: {pct:3d} % ({time.perf_counter() - self.began:.1f} s)")
        self.due = self._step_reaching((pct // self.every_pct + 1) * self.every_pct)
        return self.due

    def done(self) -> None:
        self.out(f"{self.label}: finished in {time.perf_counter() - self.began:.1f} s")


@dataclass
class Floors:
    """What backflow is measured against: total X and per-phase Y (None = not asked for)."""

    total_kw: float | None
    phase_kw: float | None


@dataclass
class Score:
    """Metrics accumulated step by step (the per-step path stays lean)."""

    floors: Floors
    settle_s: float
    epoch_s: float
    meter: DemandMeter
    usable_kwh: float = 0.0
    backflow_s: int = 0
    after_s: int = 0
    phase_s: list[int] = field(default_factory=lambda: [0, 0, 0])
    phase_after_s: list[int] = field(default_factory=lambda: [0, 0, 0])
    below_kwh: float = 0.0
    worst_kw: float = 0.0
    worst_after_kw: float = 0.0
    curtailed_kwh: float = 0.0
    available_kwh: float = 0.0
    throughput_kwh: float = 0.0
    soc_at_peak_pct: float | None = None
    _last_exo: float = 0.0
    _disturbed_at: float = -1e9
    _last_phase_exo: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    _phase_disturbed_at: list[float] = field(default_factory=lambda: [-1e9, -1e9, -1e9])
    _peak_kw: float = 0.0
    samples: list[tuple[float, ...]] = field(default_factory=list)
    record: bool = False
    step_kw: float = DISTURBANCE_KW
    ticker: Ticker | None = None
    _next_tick: int = sys.maxsize  # one integer compare per step: progress costs nothing

    def __post_init__(self) -> None:
        if self.ticker is not None:
            self._next_tick = self.ticker.due

    def __call__(self, t: int, i: PlantInputs, s: PlantState, d: Decision) -> None:
        if t >= self._next_tick and self.ticker is not None:
            self._next_tick = self.ticker.tick(t)
        phases = s.grid_phase_kw
        grid = phases[0] + phases[1] + phases[2]
        avail = sum(i.pv_available_kw)
        exo = sum(i.load_phase_kw) - avail + sum(i.charger_demand_kw)
        if abs(exo - self._last_exo) > self.step_kw:
            self._disturbed_at = t
        self._last_exo = exo
        outside = t > self._disturbed_at + self.settle_s
        x = self.floors.total_kw
        if x is not None and grid < x:
            self._below(x - grid, outside)
            self.backflow_s += 1
            self.after_s += outside
        y = self.floors.phase_kw
        if y is not None:
            shared = (sum(i.charger_demand_kw) - avail) / 3.0
            last, since = self._last_phase_exo, self._phase_disturbed_at
            for k in range(3):
                exo_k = i.load_phase_kw[k] + shared
                if abs(exo_k - last[k]) > self.step_kw:
                    since[k] = t
                last[k] = exo_k
                if phases[k] < y:
                    out_k = outside and t > since[k] + self.settle_s
                    self._below(y - phases[k], out_k)
                    self.phase_s[k] += 1
                    self.phase_after_s[k] += out_k
        self.meter.add(grid, 1.0, self.epoch_s + t)
        self._account(i, s, d, t=t, grid=grid, avail=avail)

    def _below(self, kw: float, outside: bool) -> None:
        self.below_kwh += kw / 3600.0
        self.worst_kw = max(self.worst_kw, kw)
        if outside:
            self.worst_after_kw = max(self.worst_after_kw, kw)

    def _account(
        self, i: PlantInputs, s: PlantState, d: Decision, *, t: int, grid: float, avail: float
    ) -> None:
        pv = sum(s.pv_power_kw)
        self.curtailed_kwh += (avail - pv) / 3600.0
        self.available_kwh += avail / 3600.0
        self.throughput_kwh += sum(abs(kw) for kw in s.storage_power_kw) / 3600.0
        if self.meter.month_max_kw > self._peak_kw:
            self._peak_kw = self.meter.month_max_kw
            if s.storage_soc_pct:
                self.soc_at_peak_pct = sum(s.storage_soc_pct) / len(s.storage_soc_pct)
        if self.record and t % 60 == 0:
            self.samples.append(
                (
                    t,
                    grid,
                    sum(s.storage_power_kw),
                    pv,
                    avail,
                    self.meter.demand_kw,
                    d.target_kw or 0.0,
                    d.shave_kw or 0.0,
                    sum(s.storage_soc_pct) / max(1, len(s.storage_soc_pct)),
                    sum(i.load_phase_kw),
                )
            )

    @property
    def full_cycles(self) -> float:
        """Storage throughput as full cycles of the usable window (half charge, half discharge)."""
        return self.throughput_kwh / 2.0 / self.usable_kwh if self.usable_kwh > 0.0 else 0.0
