"""One gateway meter's decision per cycle: the pure laws, wired to the meter's running state.

``MeterController.decide`` takes a frozen :class:`MeterView`, the combined goals and the time,
and returns setpoints and what it saw. It holds only what must outlive one cycle: the demand
meter (D17/D18), the learned load profile, and when the meter last gave a valid reading (D21).
It does no I/O and reads no clock: the engine (async, real devices) and the bench (synchronous,
plant model) both call it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from gridguard.control.demand import DemandMeter
from gridguard.control.dispatch.merit import plan_dispatch
from gridguard.control.dispatch.owed import Owed, owed_after, owed_now
from gridguard.control.dispatch.piles import charger_commands
from gridguard.control.dispatch.split import class_spans, pv_commands, storage_commands
from gridguard.control.laws.backflow import backflow_floor_kw
from gridguard.control.laws.combine import Bounds, combine_bounds
from gridguard.control.laws.failsafe import failsafe_command
from gridguard.control.laws.overdemand import meter_target_kw, over_demand_ceiling_kw
from gridguard.control.laws.phase import phase_floor_kw
from gridguard.control.params import ControlTuning, MeterGoals
from gridguard.control.planner import LoadPlanner, battery_budget
from gridguard.control.view import Command, MeterRatings, MeterView, hold_command
from gridguard.site.config import ControlConfig


@dataclass(frozen=True, slots=True)
class Decision:
    command: Command
    bounds: Bounds
    target_kw: float | None  # T (D18), None when over-demand is off
    shave_kw: float | None  # the level actually guarded: T, or higher when the battery cannot
    demand_kw: float  # the window's average so far; a full window once demand_partial is off
    dynamic_demand_kw: float
    failsafe: bool
    demand_partial: bool = False  # fewer than window_s of steps behind demand_kw


class MeterController:
    def __init__(
        self,
        *,
        ratings: MeterRatings,
        config: ControlConfig,
        tuning: ControlTuning,
        zone: ZoneInfo,
    ) -> None:
        self.ratings = ratings
        self.config = config
        self.tuning = tuning
        self.demand = DemandMeter(
            window_s=config.demand_window_s, step_s=config.demand_step_s, zone=zone
        )
        self.planner = LoadPlanner(zone, tuning.profile_weight)
        lag_s = tuning.actuator_lag_s
        self.alpha = 1.0 - math.exp(-config.period_s / lag_s) if lag_s > 0.0 else 1.0
        self.ramp_kw = config.relax_kw_per_s * config.period_s
        self._last_s: float | None = None
        self._last_valid_s: float | None = None
        self._level_kw = 0.0
        self._owed: Owed | None = None  # rise our releases still owe (owed.py)
        self.failsafe = False

    def decide(self, view: MeterView, goals: MeterGoals, mono_s: float, epoch_s: float) -> Decision:
        """One cycle: account the sample, then bounds -> dispatch -> clamped setpoints."""
        if self.alpha >= 1.0:  # no lag: an output follows its limit within the cycle
            return self._decide(view, goals, mono_s, epoch_s, None)
        owed = owed_now(self._owed, view, self.alpha)
        decision = self._decide(view, goals, mono_s, epoch_s, owed)
        self._owed = owed_after(owed, view, decision.command)
        return decision

    def _decide(
        self, view: MeterView, goals: MeterGoals, mono_s: float, epoch_s: float, owed: Owed | None
    ) -> Decision:
        dt_s = self.config.period_s if self._last_s is None else min(mono_s - self._last_s, 60.0)
        self._last_s = mono_s
        if self._last_valid_s is None:
            self._last_valid_s = mono_s  # the timeout counts from start-up
        reading = view.meter
        if reading.valid:
            self._last_valid_s = mono_s
        grid_kw = reading.grid_power_kw if reading.valid else None
        stepped = self.demand.add(grid_kw, dt_s, epoch_s)
        if grid_kw is not None:
            storage_kw = sum(r.power_kw for r in view.storage if r.online)
            self.planner.observe(grid_kw + storage_kw, epoch_s)
        self.failsafe = mono_s - self._last_valid_s >= self.config.meter_timeout_s
        if self.failsafe:
            command = failsafe_command(
                view, self.ratings, goals, pv_failsafe_pct=self.config.pv_failsafe_pct
            )
            return self._decision(command, Bounds(), self._target_kw(goals), None)
        if grid_kw is None:
            return self._decision(hold_command(view), Bounds(), self._target_kw(goals), None)
        target = self._target_kw(goals)
        shave = target
        recharge = math.inf
        if target is not None and goals.storage_hi and self.tuning.planner_enabled:
            billed = max(target, self.demand.month_max_kw)
            if stepped:
                self._level_kw = self._plan(view, epoch_s, billed - self.config.buffer_kw)
            shave = max(target, self._level_kw + self.config.buffer_kw)
            recharge = billed - self.config.buffer_kw
        bounds = self._bounds(view, goals, shave)
        spans = class_spans(view, self.ratings, goals, self.alpha, self.ramp_kw, owed=owed)
        plan = plan_dispatch(
            grid_power_kw=grid_kw,
            bounds=bounds,
            goals=goals,
            spans=spans,
            ramp_kw=self.ramp_kw,
            recharge_ceiling_kw=recharge,
        )
        command = Command(
            storage_kw=tuple(storage_commands(view, goals, plan, self.alpha)),
            pv_limit_kw=tuple(pv_commands(view, goals, plan, spans, self.ramp_kw, owed=owed)),
            charger_limit_kw=tuple(
                charger_commands(
                    view, self.ratings, goals, plan, spans=spans, ramp_kw=self.ramp_kw, owed=owed
                )
            ),
        )
        return self._decision(command, bounds, target, shave)

    def _target_kw(self, goals: MeterGoals) -> float | None:
        return meter_target_kw(
            goals.over_demand,
            month=self.demand.month_of_year,
            dynamic_demand_kw=self.dynamic_demand_kw(),
        )

    def _bounds(self, view: MeterView, goals: MeterGoals, shave_kw: float | None) -> Bounds:
        buffer_kw = self.config.buffer_kw
        floors: list[float] = []
        ceilings: list[float] = []
        if goals.streaming_kw is not None:
            floors.append(backflow_floor_kw(streaming_kw=goals.streaming_kw, buffer_kw=buffer_kw))
        phases = view.meter.phase_power_kw
        if goals.phase_kw is not None and phases is not None:
            floors.append(
                phase_floor_kw(
                    grid_power_kw=view.meter.grid_power_kw,
                    phase_power_kw=phases,
                    phase_kw=goals.phase_kw,
                    buffer_kw=buffer_kw,
                )
            )
        if shave_kw is not None:
            ceilings.append(over_demand_ceiling_kw(target_kw=shave_kw, buffer_kw=buffer_kw))
        return combine_bounds(floors, ceilings)

    def _plan(self, view: MeterView, epoch_s: float, floor_kw: float) -> float:
        """Lowest import level >= ``floor_kw`` the battery can hold (a peak already billed
        is free, so the floor is the higher of T and the month's maximum, minus the buffer)."""
        battery = battery_budget(view.storage, self.ratings.storage)
        return self.planner.level_kw(epoch_s, floor_kw=floor_kw, battery=battery)

    def export_state(self) -> dict[str, Any]:
        """What must survive a restart: the demand meter (D18) and the learned profile."""
        return {"demand": self.demand.export(), "profile": self.planner.export()}

    def restore_state(self, state: dict[str, Any], epoch_s: float) -> None:
        """Take back an exported state (a stale month is dropped by the demand meter)."""
        if isinstance(state.get("demand"), dict):
            self.demand.restore(state["demand"], epoch_s)
        if isinstance(state.get("profile"), dict):
            self.planner.restore(state["profile"])

    def dynamic_demand_kw(self) -> float:
        """The month's highest recorded demand in kW (D18), 0 before the first full window."""
        return self.demand.month_max_kw

    def _decision(
        self,
        command: Command,
        bounds: Bounds,
        target_kw: float | None,
        shave_kw: float | None,
    ) -> Decision:
        return Decision(
            command=command,
            bounds=bounds,
            target_kw=target_kw,
            shave_kw=shave_kw,
            demand_kw=self.demand.running_kw,
            dynamic_demand_kw=self.demand.month_max_kw,
            failsafe=self.failsafe,
            demand_partial=self.demand.partial,
        )
