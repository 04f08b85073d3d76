"""Time alignment of a late meter with the devices' present readings, and its noise.

The feed-forward law takes the uncontrolled load as grid + the devices' net output
(storage + PV - piles). A meter behind a gateway (or one averaging over its own second) reports
the grid of ``d`` cycles ago; adding the devices' output of *now* then counts every device move
twice, and the loop rings (a 6 s limit cycle at d = 1). Aligned, the load is
``meter + net(t - d)``, and the grid now is that load minus ``net(t)``.

``d`` is the configured meter delay at start and is then *identified online*: for every
candidate delay the load estimate ``meter + net(t - d)`` is smooth only when ``d`` is right
(a wrong one leaves each device move in it for one cycle), so the candidate with the smallest
mean squared step wins, with hysteresis (it must be twice as smooth as the one in force), and
only once devices have moved enough to tell the candidates apart.

The same load estimate, at the delay in force, gives the meter's noise: its step between cycles
is the difference of two noise samples when the load holds; a robust running mean of the
absolute step (steps beyond five times the estimate are load steps and are clipped) gives
sigma = mean |step| x sqrt(pi) / 2.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

SMOOTHING = 0.01  # weight of the newest cycle in the running means (~100 cycles)
SWITCH_RATIO = 0.5  # a candidate must be this much smoother to take over
MIN_MOVE_KW = 1.0  # devices must move by this (mean |step|) before the delay is judged
_ABS_TO_SIGMA = math.sqrt(math.pi) / 2.0  # mean |a - b| = 2 sigma / sqrt(pi) for a, b ~ N(0, s)


@dataclass
class MeterAlignment:
    """Per-meter state: recent device net output, and the candidates' smoothness."""

    delay: int = 0
    max_delay: int = 2
    noise_kw: float = 0.35  # sigma of the total-power noise, a 0.2 kW per-phase meter
    _net: deque[float] = field(default_factory=lambda: deque(maxlen=4))
    _last: list[float | None] = field(default_factory=list)
    _score: list[float] = field(default_factory=list)
    _move_kw: float = 0.0
    _abs_step_kw: float = 0.0

    def __post_init__(self) -> None:
        self._net = deque(maxlen=self.max_delay + 1)
        self._last = [None] * (self.max_delay + 1)
        self._score = [0.0] * (self.max_delay + 1)
        self._abs_step_kw = self.noise_kw / _ABS_TO_SIGMA
        self.delay = min(max(self.delay, 0), self.max_delay)

    def observe(self, meter_kw: float, net_kw: float) -> None:
        """Account one valid cycle: meter total and the devices' net output now."""
        if self._net:
            self._move_kw += SMOOTHING * (abs(net_kw - self._net[-1]) - self._move_kw)
        self._net.append(net_kw)
        for d in range(min(len(self._net), self.max_delay + 1)):
            load = meter_kw + self._net[-1 - d]
            last = self._last[d]
            if last is not None:
                step = load - last
                self._score[d] += SMOOTHING * (step * step - self._score[d])
                if d == self.delay:
                    self._noise(abs(step))
            self._last[d] = load
        self._judge()

    def _noise(self, abs_step_kw: float) -> None:
        clipped = min(abs_step_kw, 5.0 * self._abs_step_kw + 0.05)
        self._abs_step_kw += SMOOTHING * (clipped - self._abs_step_kw)
        self.noise_kw = self._abs_step_kw * _ABS_TO_SIGMA

    def _judge(self) -> None:
        if self._move_kw < MIN_MOVE_KW or len(self._net) <= self.max_delay:
            return
        best = min(range(self.max_delay + 1), key=self._score.__getitem__)
        if self._score[best] < SWITCH_RATIO * self._score[self.delay]:
            self.delay = best

    def correction_kw(self) -> float:
        """What to add to the meter's total to get the grid of now (0 when it is on time)."""
        if self.delay == 0 or len(self._net) <= self.delay:
            return 0.0
        return self._net[-1 - self.delay] - self._net[-1]
