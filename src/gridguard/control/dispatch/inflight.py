"""Setpoints written but not yet acting: a command delay, identified and compensated.

A gateway that forwards Modbus writes a cycle later (or a PCS that takes its setpoint at its
own next scan) makes every setpoint act ``k`` cycles after it is written. The feed-forward
law sees the devices' present outputs and the meter, decides the next cycle's outputs, and
its last setpoints are still on their way: it corrects the same error again, the correction
arrives twice, and the loop rings below the floor.

The controller knows what it wrote and when. With a delay of ``k`` cycles, the setpoints
written in the last ``k`` cycles act before the one being decided, in order; so the decision
is taken on the view *as it will be* when its own setpoint acts (:func:`ahead`): each storage
output moved toward each setpoint in flight with the actuator lag (within its BMS limits),
each PV or pile limit the last one written, an output above a lowered limit falling toward
it, a PV output rising toward a raised limit (or one it is still catching up with, within a
ramp) at its worst case (the floor's side: the sun may give less), and the meter's total
and phases shifted by what the devices' net output is predicted to do meanwhile (the load
is taken to hold; devices are three-phase).
With ``k = 0`` the view is returned unchanged.

``k`` is the configured ``command_delay_s`` unless the devices' own responses prove another
(:class:`CommandDelay`), with the care of the meter-delay identifier (``latency.py``):

* each storage unit's response ``x(t+1) - x(t)`` is ``a * (s - x(t))`` with ``s`` the
  setpoint acting, clamped by the BMS; for every candidate ``k`` in 0..2 the setpoint acting
  is the one written ``k`` cycles before. The lag the controller is told may be wrong, so each
  candidate gets its own best gain ``a`` (least squares over the window) and is judged by
  what that leaves unexplained;
* the candidates are compared over the *same* cycles, and only cycles in which their
  setpoints differ by more than ``MIN_MOVE_KW`` count (a held setpoint says nothing);
* no verdict before ``WINDOW`` such cycles; a candidate replaces the configured delay only
  when it leaves less than ``SWITCH_RATIO`` of the configured delay's residual, for ``HOLD``
  informative cycles in a row; in force it stays while it explains the responses better than
  the configured one at all, and the configured delay comes back once that evidence fades.

Storage responses are evidence, and so are PV and pile outputs falling toward a limit cut
below them; a rise is not (below its limit an output follows the sun or the vehicle, which
cannot tell a late write from a lacking source). Each class gets its own gain.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, replace

from gridguard.control.dispatch.latency import held, verdict
from gridguard.control.view import Command, MeterView
from gridguard.devices.protocols import ChargerReading, PvReading, StorageReading

MAX_DELAY = 2  # cycles: the candidates are 0..MAX_DELAY
MIN_MOVE_KW = 1.0  # candidates' setpoints closer than this say nothing about the delay
WINDOW = 8  # informative cycles the candidates are compared over (the switch and fade
# margins and the hold are the meter-delay identifier's: latency.verdict, latency.held)
_TINY = 1e-9
GAIN_EVIDENCE_KW = 100.0  # root of the summed squared storage moves asked, for a gain
EPS_KW = 0.5  # an output this close to its limit is held by it (as in split.py)

_Device = StorageReading | PvReading | ChargerReading

Written = tuple[tuple[float | None, ...], tuple[float | None, ...], tuple[float | None, ...]]
"""The setpoints in force after one cycle's writes: storage, PV limits, pile limits (None:
never written since start-up)."""


Setpoints = tuple[float | None, ...]


def _merge(old: Setpoints, new: Setpoints) -> Setpoints:
    if len(old) != len(new):
        return new
    return tuple(o if n is None else n for o, n in zip(old, new, strict=True))


def _storage_ahead(r: StorageReading, setpoint: float | None, alpha: float) -> StorageReading:
    if not r.online or setpoint is None:
        return r
    target = min(max(setpoint, -r.max_charge_kw), r.max_discharge_kw)
    kw = r.power_kw + alpha * (target - r.power_kw)
    return replace(r, power_kw=min(max(kw, -r.max_charge_kw), r.max_discharge_kw))


def _pv_ahead(r: PvReading, limit: float | None, alpha: float, ramp_kw: float) -> PvReading:
    if not r.online or limit is None:
        return r
    limit = min(max(limit, 0.0), r.rated_kw)
    kw = r.power_kw
    if limit < kw:  # a cut in flight: the output falls toward it
        kw += alpha * (limit - kw)
    elif limit > r.limit_kw + EPS_KW or r.limit_kw - kw <= ramp_kw + EPS_KW:
        # a release on its way, or an output still catching up with the last one: it rises
        # at its worst case for the floor (the sun may give less)
        kw += alpha * (limit - kw)
    return replace(r, power_kw=kw, limit_kw=limit)


def _pile_ahead(r: ChargerReading, limit: float | None, alpha: float) -> ChargerReading:
    if not r.online or limit is None:
        return r
    kw = r.power_kw
    if limit < kw:  # a throttle in flight: the power falls toward it (a rise is the
        kw += alpha * (max(limit, 0.0) - kw)  # vehicle's, counted as pending by the split)
    return replace(r, power_kw=kw, limit_kw=max(limit, 0.0))


def _net_kw(view: MeterView) -> float:
    return (
        sum(r.power_kw for r in view.storage if r.online)
        + sum(r.power_kw for r in view.pv if r.online)
        - sum(r.power_kw for r in view.chargers if r.online)
    )


def ahead(view: MeterView, in_flight: list[Written], alpha: float, ramp_kw: float) -> MeterView:
    """The view when the next setpoint acts: ``in_flight`` (oldest first) acted one cycle
    each; the meter shifted by the predicted change of the devices' net output."""
    if not in_flight:
        return view
    out = view
    for storage, pv, piles in in_flight:
        out = replace(
            out,
            storage=tuple(
                _storage_ahead(r, s, alpha)
                for r, s in zip(out.storage, _fit(storage, len(out.storage)), strict=True)
            ),
            pv=tuple(
                _pv_ahead(r, v, alpha, ramp_kw)
                for r, v in zip(out.pv, _fit(pv, len(out.pv)), strict=True)
            ),
            chargers=tuple(
                _pile_ahead(r, c, alpha)
                for r, c in zip(out.chargers, _fit(piles, len(out.chargers)), strict=True)
            ),
        )
    shift = _net_kw(out) - _net_kw(view)
    if shift == 0.0:
        return out
    meter = view.meter
    phases = meter.phase_power_kw
    each = shift / 3.0
    moved = None if phases is None else (phases[0] - each, phases[1] - each, phases[2] - each)
    return replace(
        out, meter=replace(meter, grid_power_kw=meter.grid_power_kw - shift, phase_power_kw=moved)
    )


def _fit(values: tuple[float | None, ...], n: int) -> tuple[float | None, ...]:
    return values if len(values) == n else (None,) * n


def _inputs(
    kind: int, i: int, before: _Device, now: _Device, acting: list[Written]
) -> list[float] | None:
    """Per candidate delay, the move its acting setpoint asks of one device over the step
    (None: the device says nothing this step). Storage goes toward its setpoint within its
    BMS limits; a PV or pile output only falls toward a limit below it (below a limit it
    follows its source, which the model cannot know: no move asked)."""
    if not (before.online and now.online):
        return None
    values = [w[kind][i] if i < len(w[kind]) else None for w in acting]
    if any(v is None for v in values):
        return None
    setpoints = [v for v in values if v is not None]
    if isinstance(before, StorageReading):
        return [
            min(max(v, -before.max_charge_kw), before.max_discharge_kw) - before.power_kw
            for v in setpoints
        ]
    return [min(0.0, max(v, 0.0) - before.power_kw) for v in setpoints]


def _rows(
    previous: MeterView, view: MeterView, acting: list[Written]
) -> list[tuple[int, int, float, float]] | None:
    """One step's evidence rows (device class, candidate, move asked, response); None when
    no candidate's setpoints differ enough to tell them apart."""
    rows: list[tuple[int, int, float, float]] = []
    informative = False
    pairs: list[tuple[int, list[tuple[_Device, _Device]]]] = [
        (0, list(zip(previous.storage, view.storage, strict=False))),
        (1, list(zip(previous.pv, view.pv, strict=False))),
        (2, list(zip(previous.chargers, view.chargers, strict=False))),
    ]
    for kind, devices in pairs:
        for i, (before, now) in enumerate(devices):
            inputs = _inputs(kind, i, before, now, acting)
            if inputs is None:
                continue
            response = now.power_kw - before.power_kw
            if kind != 0 and not _explicable(response, inputs):
                continue  # the sun's or the vehicle's own move: no candidate's to explain
            if max(inputs) - min(inputs) > MIN_MOVE_KW:
                informative = True
            rows.extend((kind, k, u, response) for k, u in enumerate(inputs))
    return rows if informative else None


def _explicable(response_kw: float, inputs: list[float]) -> bool:
    """A PV or pile output's move that some candidate's limit can explain: a fall toward a
    limit cut below it, no deeper than the deepest cut asked. A rise (below its limit an
    output follows its source) or a deeper fall (a cloud under the cut) is the source's, and
    scoring it would charge every candidate for what none of them asked."""
    return -MIN_MOVE_KW <= -response_kw <= -min(inputs) + MIN_MOVE_KW


@dataclass
class _Fit:
    """Least-squares sums of one candidate over the window: response = a x input."""

    uu: float = 0.0
    uy: float = 0.0
    yy: float = 0.0

    def residual(self) -> float:
        if self.uu <= _TINY or self.uy <= 0.0:  # no positive gain explains anything
            return self.yy
        return max(0.0, self.yy - self.uy * self.uy / self.uu)


@dataclass
class CommandDelay:
    """Per meter: the setpoints written lately and the evidence on the command delay."""

    delay: int = 0
    """The delay in force, cycles."""
    identify: bool = True
    """Take another delay than the configured one when the devices' responses prove it."""
    configured: int = 0
    _written: deque[Written] = field(default_factory=deque)
    _last: MeterView | None = None
    _cycles: deque[tuple[tuple[int, int, float, float], ...]] = field(default_factory=deque)
    _evidence: int = 0
    _streak: int = 0
    _gain: float | None = None

    def __post_init__(self) -> None:
        self.delay = min(max(self.delay, 0), MAX_DELAY)
        self.configured = self.delay
        self._written = deque(maxlen=MAX_DELAY + 2)
        self._cycles = deque(maxlen=WINDOW)

    @property
    def evidence(self) -> int:
        """Informative cycles seen so far."""
        return self._evidence

    def in_flight(self) -> list[Written]:
        """The setpoints written in the last ``delay`` cycles, oldest first (not yet acting)."""
        if self.delay == 0:
            return []
        return list(self._written)[-self.delay :]

    def wrote(self, command: Command) -> None:
        """Account what this cycle wrote (None: not written, the device keeps the last)."""
        last = self._written[-1] if self._written else ((), (), ())
        self._written.append(
            (
                _merge(last[0], command.storage_kw),
                _merge(last[1], command.pv_limit_kw),
                _merge(last[2], command.charger_limit_kw),
            )
        )

    def observe(self, view: MeterView) -> None:
        """Account the device readings of this cycle (before this cycle's write)."""
        previous, self._last = self._last, view
        if previous is None or len(self._written) < MAX_DELAY + 1:
            return  # not every candidate has its setpoint yet: score them on the same cycles
        # the step previous -> now acted on the setpoints of k writes before the last
        acting = [self._written[-1 - k] for k in range(MAX_DELAY + 1)]
        if all(a == acting[0] for a in acting):
            return  # every candidate's setpoints are the same: nothing to tell them apart
        rows = _rows(previous, view, acting)
        if rows is None:
            return
        self._evidence += 1
        self._cycles.append(tuple(rows))
        if len(self._cycles) == WINDOW:
            fits = self._fits()
            self._weigh_gain(fits)  # at the delay in force while these cycles came in
            if self.identify:
                self._judge(fits)

    def _fits(self) -> dict[tuple[int, int], _Fit]:
        fits = {(kind, k): _Fit() for kind in range(3) for k in range(MAX_DELAY + 1)}
        for rows in self._cycles:
            for kind, k, u, y in rows:
                f = fits[kind, k]
                f.uu += u * u
                f.uy += u * y
                f.yy += y * y
        return fits

    def residuals(self, fits: dict[tuple[int, int], _Fit] | None = None) -> list[float]:
        """What each candidate delay leaves unexplained over the window (kW^2): each device
        class gets its own best gain per candidate (the lag told may be wrong)."""
        fits = fits if fits is not None else self._fits()
        return [sum(fits[kind, k].residual() for kind in range(3)) for k in range(MAX_DELAY + 1)]

    def storage_gain(self) -> float | None:
        """The storage's response per kW asked over one cycle at the delay in force (least
        squares over the window): the lag the devices show, whatever the lag told. It is
        taken from the last full window with storage moves of at least ``GAIN_EVIDENCE_KW``
        in it (a battery holding a steady charge only answers noise) and kept until the next
        such window; None before the first."""
        return self._gain

    def _weigh_gain(self, fits: dict[tuple[int, int], _Fit]) -> None:
        f = fits[0, self.delay]
        if f.uu >= GAIN_EVIDENCE_KW**2 and f.uy > 0.0:
            self._gain = min(1.0, f.uy / f.uu)

    def _verdict(self, fits: dict[tuple[int, int], _Fit] | None = None) -> int:
        return verdict(self.residuals(fits), configured=self.configured, in_force=self.delay)

    def _judge(self, fits: dict[tuple[int, int], _Fit] | None = None) -> None:
        self.delay, self._streak = held(self._verdict(fits), self.delay, self._streak)
