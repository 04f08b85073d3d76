"""Time alignment of a late meter with the devices' present readings, and the meter's noise.

The feed-forward law takes the uncontrolled load as grid + the devices' net output
(storage + PV - piles). A meter behind a gateway (or one averaging over its own second) reports
the grid of ``d`` cycles ago; adding the devices' output of *now* then counts every device move
twice, and the loop rings (a 6 s limit cycle at d = 1). Aligned, the load is
``meter + net(t - d)``, and the grid now is that load minus ``net(t)``.

``d`` is the configured meter delay (the site's ``meter_delay_s``, 0 by default) unless the
meter's own readings prove another one. The proof (:class:`MeterAlignment`):

* for every candidate ``d`` the load estimate ``meter + net(t - d)`` is smooth only when ``d``
  is right (a wrong one leaves each device move in it), so the candidates' absolute steps are
  summed over the same window of the last ``WINDOW`` informative cycles;
* only *informative* cycles count: cycles in which the devices moved by more than
  ``MOVE_SIGMAS`` of the measured noise (and at least ``MIN_MOVE_KW``); quiet cycles say
  nothing about the delay, and a load step is common to every candidate, so it only dilutes
  the contrast (never creates one);
* no verdict before the window is full;
* a candidate replaces the configured delay only while its summed step is below ``SWITCH_RATIO``
  of the configured one's, and only after that held for ``HOLD`` informative cycles in a row.
  A reading skewed by a fraction f of a cycle (Modbus read jitter, a scan not quite in step)
  gives ratio (1 - f) / f for ``d = 1`` against 0: below 0.5 only when f > 2/3, so jitter of up
  to two thirds of a cycle never moves the delay;
* once in force it stays while its summed step is below ``FADE_RATIO`` (1) of the configured
  one's, that is while any contrast is left: load steps are common to every candidate and
  dilute the contrast toward 1, and a looser margin (0.75 was tried) let the true delay of a
  meter one cycle late drop out on the broken-cloud day, and the loop rang until it came back.
  When the configured delay is at least as smooth (for ``HOLD`` informative cycles in a row),
  the evidence has faded and the configured delay comes back.

The noise (:class:`MeterNoise`) comes from the same load estimate at the delay in force: while
the devices hold, its step between cycles is the difference of two noise samples; a robust
running mean of the absolute step (steps beyond five times the estimate are load steps and are
clipped) gives sigma = mean |step| x sqrt(pi) / 2. It is measured whether or not the delay is
compensated: the buffer sized from it does not depend on the alignment.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

SMOOTHING = 0.01  # weight of the newest cycle in the noise's running mean (~100 cycles)
SWITCH_RATIO = 0.5  # a candidate's step must be this much smaller than the configured one's
FADE_RATIO = 1.0  # and, in force, stays while its step is smaller at all
MIN_MOVE_KW = 1.0  # a device move smaller than this says nothing about the delay
MOVE_SIGMAS = 4.0  # nor one within this many sigma of the measured noise
WINDOW = 8  # the candidates are compared over this many of the latest informative cycles
HOLD = 4  # and a verdict must hold for this many informative cycles in a row to be taken
_ABS_TO_SIGMA = math.sqrt(math.pi) / 2.0  # mean |a - b| = 2 sigma / sqrt(pi) for a, b ~ N(0, s)


def verdict(scores: list[float], *, configured: int, in_force: int) -> int:
    """The candidate delay a window of evidence speaks for: the best-scoring one (lowest:
    what it leaves unexplained) if it scores under ``SWITCH_RATIO`` of the configured delay,
    else the delay in force while it still scores under ``FADE_RATIO`` of the configured one,
    else the configured delay. Shared by the meter-delay and command-delay identifiers."""
    base = scores[configured]
    best = min(range(len(scores)), key=scores.__getitem__)
    if scores[best] < SWITCH_RATIO * base:
        return best
    if in_force != configured and scores[in_force] < FADE_RATIO * base:
        return in_force
    return configured


def held(proposed: int, in_force: int, streak: int) -> tuple[int, int]:
    """(delay in force, streak) after one more verdict: a different delay is taken once it has
    been proposed ``HOLD`` informative cycles in a row."""
    streak = streak + 1 if proposed != in_force else 0
    if streak >= HOLD:
        return proposed, 0
    return in_force, streak


@dataclass
class MeterNoise:
    """The meter's noise (sigma of its total, kW) from the steps of the load estimate."""

    noise_kw: float = 0.35  # a 0.2 kW per-phase meter until measured
    _abs_step_kw: float = 0.0

    def __post_init__(self) -> None:
        self._abs_step_kw = self.noise_kw / _ABS_TO_SIGMA

    def observe(self, abs_step_kw: float) -> None:
        """Account one step of the load estimate (kW, absolute)."""
        clipped = min(abs_step_kw, 5.0 * self._abs_step_kw + 0.05)
        self._abs_step_kw += SMOOTHING * (clipped - self._abs_step_kw)
        self.noise_kw = self._abs_step_kw * _ABS_TO_SIGMA


@dataclass
class MeterAlignment:
    """Per-meter state: recent meter and device readings, and the evidence on the delay."""

    delay: int = 0
    """The delay in force, cycles."""
    max_delay: int = 2
    identify: bool = True
    """Take another delay than the configured one when the readings prove it."""
    _noise: list[MeterNoise] = field(default_factory=list)
    configured: int = 0
    _net: deque[float] = field(default_factory=deque)
    _meter: float | None = None
    _steps: deque[tuple[float, ...]] = field(default_factory=deque)
    _evidence: int = 0
    _streak: int = 0

    def __post_init__(self) -> None:
        self.delay = min(max(self.delay, 0), self.max_delay)
        self.configured = self.delay
        self._net = deque(maxlen=self.max_delay + 2)
        self._steps = deque(maxlen=WINDOW)
        self._noise = [MeterNoise() for _ in range(self.max_delay + 1)]

    @property
    def noise(self) -> MeterNoise:
        """The noise of the load estimate at the delay in force (what the floors must cover)."""
        return self._noise[self.delay]

    @property
    def noise_kw(self) -> float:
        return self.noise.noise_kw

    @property
    def evidence(self) -> int:
        """Informative cycles seen so far."""
        return self._evidence

    def observe(self, meter_kw: float, net_kw: float) -> None:
        """Account one valid cycle: meter total and the devices' net output now."""
        self._net.append(net_kw)
        previous, self._meter = self._meter, meter_kw
        if previous is None or len(self._net) < 2:
            return
        d_meter = meter_kw - previous
        for d, noise in enumerate(self._noise):
            noise.observe(abs(d_meter + self._move(d)))
        if len(self._net) < self.max_delay + 2:
            return  # not every candidate has its step yet: score them on the same cycles only
        moves = [abs(self._move(d)) for d in range(self.max_delay + 1)]
        quietest_kw = min(n.noise_kw for n in self._noise)  # a wrong delay inflates its own
        if max(moves) < max(MIN_MOVE_KW, MOVE_SIGMAS * quietest_kw):
            return
        self._evidence += 1
        self._steps.append(tuple(abs(d_meter + self._move(d)) for d in range(self.max_delay + 1)))
        if self.identify and len(self._steps) == WINDOW:
            self._judge()

    def _move(self, d: int) -> float:
        """net(t - d) - net(t - d - 1): the devices' move ``d`` cycles ago (0 before known)."""
        n = len(self._net)
        if n < d + 2:
            return 0.0
        return self._net[-1 - d] - self._net[-2 - d]

    def _verdict(self) -> int:
        """The delay the window speaks for (the smoothest candidate, see :func:`verdict`)."""
        sums = [sum(column) for column in zip(*self._steps, strict=True)]
        return verdict(sums, configured=self.configured, in_force=self.delay)

    def _judge(self) -> None:
        self.delay, self._streak = held(self._verdict(), self.delay, self._streak)

    def correction_kw(self) -> float:
        """What to add to the meter's total to get the grid of now (0 when it is on time)."""
        if self.delay == 0 or len(self._net) <= self.delay:
            return 0.0
        return self._net[-1 - self.delay] - self._net[-1]
