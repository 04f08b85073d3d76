"""The comparison controller of the bench: plain proportional, 20 % of the error per cycle.

This is how common open-source EMS controllers do it: every cycle each setpoint moves a fixed
fraction of the way from its last value to the full correction (``setpoint += 0.2 x error``),
with no actuator-lag compensation, no separate slow relax, and no demand planning. It reuses
the same bounds and merit order as GridGuard, so the bench compares the control law only.
"""

from __future__ import annotations

from dataclasses import replace
from zoneinfo import ZoneInfo

from gridguard.control.controller import Decision, MeterController
from gridguard.control.params import ControlTuning, MeterGoals
from gridguard.control.view import Command, MeterRatings, MeterView
from gridguard.site.config import ControlConfig


def _blend(
    last: tuple[float, ...], full: tuple[float | None, ...], gain: float
) -> tuple[float, ...]:
    return tuple(o if f is None else o + gain * (f - o) for o, f in zip(last, full, strict=True))


class ProportionalController:
    def __init__(
        self,
        *,
        ratings: MeterRatings,
        config: ControlConfig,
        zone: ZoneInfo,
        resting: Command,
        gain: float = 0.2,
    ) -> None:
        self.inner = MeterController(
            ratings=ratings,
            config=config.model_copy(update={"relax_kw_per_s": 1e9}),
            # what it writes is 20 % of the inner decision, not the decision: the inner
            # controller's record of its writes is no evidence of a setpoint delay
            # and it compensates nothing: no lag (told or learned), no climb still to come
            tuning=ControlTuning(
                actuator_lag_s=0.0,
                planner_enabled=False,
                align_commands=False,
                learn_lag=False,
                pv_climb=False,
                serve_unseen=False,
            ),
            zone=zone,
        )
        self.gain = gain
        self._last = (
            tuple(v or 0.0 for v in resting.storage_kw),
            tuple(v or 0.0 for v in resting.pv_limit_kw),
            tuple(v or 0.0 for v in resting.charger_limit_kw),
        )

    def decide(self, view: MeterView, goals: MeterGoals, mono_s: float, epoch_s: float) -> Decision:
        """The full correction, of which 20 % is applied."""
        full = self.inner.decide(view, goals, mono_s, epoch_s)
        s, p, c = self._last
        self._last = (
            _blend(s, full.command.storage_kw, self.gain),
            _blend(p, full.command.pv_limit_kw, self.gain),
            _blend(c, full.command.charger_limit_kw, self.gain),
        )
        return replace(full, command=Command(*self._last))
