"""One gateway meter's decision per cycle: the pure laws, wired to the meter's running state.

``MeterController.decide`` takes a frozen :class:`MeterView`, the combined goals and the time,
and returns setpoints and what it saw. It holds only what must outlive one cycle: the demand
meter (D17/D18), the learned load profile, and when the meter last gave a valid reading (D21).
It does no I/O and reads no clock: the engine (async, real devices) and the bench (synchronous,
plant model) both call it.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from gridguard.control.demand import DemandMeter
from gridguard.control.dispatch.inflight import CommandDelay, ahead
from gridguard.control.dispatch.latency import MeterAlignment
from gridguard.control.dispatch.merit import plan_dispatch
from gridguard.control.dispatch.owed import Owed, owed_after, owed_now
from gridguard.control.dispatch.piles import charger_commands
from gridguard.control.dispatch.rest import (
    UNSEEN_CYCLES,
    Rest,
    provisional_kwh,
    pv_morning,
    resting,
    resting_kwh,
    surplus_room_kwh,
)
from gridguard.control.dispatch.rise import Climb, climbed, rises_kw
from gridguard.control.dispatch.split import (
    class_spans,
    energy_limited,
    pv_commands,
    storage_commands,
)
from gridguard.control.explain import EMPTY, Explanation, Narrator, binding_bound
from gridguard.control.laws.backflow import backflow_floor_kw
from gridguard.control.laws.combine import Bounds, combine_bounds
from gridguard.control.laws.failsafe import failsafe_command
from gridguard.control.laws.overdemand import meter_target_kw, over_demand_ceiling_kw
from gridguard.control.laws.phase import phase_floor_kw
from gridguard.control.params import ControlTuning, MeterGoals
from gridguard.control.planner import LoadPlanner, battery_budget, reserve_kwh
from gridguard.control.view import Command, MeterRatings, MeterView, hold_command
from gridguard.devices.protocols import MeterReading
from gridguard.site.config import ControlConfig

GAIN_MISMATCH = 0.25
"""A storage response gain this far (as a share) from the lag told replaces it."""
MIN_GAIN = 0.05
"""Least storage gain taken from the responses (a 20 s lag at 1 s)."""
HOLD_H = 2.0
"""Hours of the present excess the stored energy must cover for the level to stay put."""


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
    explain: Explanation = EMPTY


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
        self.told_alpha = 1.0 - math.exp(-config.period_s / lag_s) if lag_s > 0.0 else 1.0
        self.alpha = self.told_alpha  # the lag told, or the one the storage's responses show
        self.ramp_kw = config.relax_kw_per_s * config.period_s
        self._last_s: float | None = None
        self._last_valid_s: float | None = None
        self._level_kw = 0.0
        self._forecast_peak_kw: float | None = None
        self._owed: Owed | None = None  # rise our releases still owe (owed.py)
        self._climb = Climb()  # the PV outputs' last rises (rise.py)
        self._asked: deque[float] = deque(maxlen=UNSEEN_CYCLES)  # discharge rises asked
        self.alignment = MeterAlignment(
            delay=round(tuning.meter_delay_s / config.period_s) if tuning.align_meter else 0,
            identify=tuning.align_meter and tuning.identify_meter_delay,
        )
        self.commands = CommandDelay(
            delay=round(tuning.command_delay_s / config.period_s) if tuning.align_commands else 0,
            identify=tuning.align_commands and tuning.identify_command_delay,
        )
        self._reserve_kwh: float | None = None
        self._persisted_kwh = 0.0  # the reserve on persistence, while nothing is learned
        self.zone = zone
        self._least_load: tuple[int, float] = (-1, math.inf)  # (local day, least site load)
        self._offset: tuple[int, float] = (-1, 0.0)  # (UTC hour, the zone's offset in s)
        self.rest = Rest(None, "")
        self.narrator = Narrator()
        self._floor_source: str | None = None
        self._phase: str | None = None
        self.failsafe = False

    def decide(self, view: MeterView, goals: MeterGoals, mono_s: float, epoch_s: float) -> Decision:
        """One cycle: account the sample, then bounds -> dispatch -> clamped setpoints.

        With a valid meter the view is first moved to *now* (a late meter, ``latency.py``)
        and then to when this cycle's setpoints act (setpoints still in flight,
        ``inflight.py``); the demand meter counts the meter's own reading."""
        raw = view.meter
        self.commands.observe(view)
        self.alpha = self._alpha()
        before, self._climb = self._climb, climbed(self._climb, view.pv, self.alpha)
        if raw.valid:
            view = ahead(self._aligned(view), self.commands.in_flight(), self.alpha, self.ramp_kw)
        # no lag: an output follows its limit within the cycle, nothing is owed
        owed = owed_now(self._owed, view, self.alpha) if self.alpha < 1.0 else None
        rises = (
            rises_kw(before, self._climb, view.pv, self.alpha, owed.pv_kw if owed else None)
            if self.tuning.pv_climb
            else None
        )
        decision = self._decide(
            view, raw, goals, mono_s=mono_s, epoch_s=epoch_s, owed=owed, rises=rises
        )
        if self.alpha < 1.0:
            self._owed = owed_after(owed, view, decision.command)
        self.commands.wrote(decision.command)
        return decision

    def _decide(
        self,
        view: MeterView,
        raw: MeterReading,
        goals: MeterGoals,
        *,
        mono_s: float,
        epoch_s: float,
        owed: Owed | None,
        rises: tuple[float, ...] | None = None,
    ) -> Decision:
        dt_s = self.config.period_s if self._last_s is None else min(mono_s - self._last_s, 60.0)
        self._last_s = mono_s
        if self._last_valid_s is None:
            self._last_valid_s = mono_s  # the timeout counts from start-up
        if raw.valid:
            self._last_valid_s = mono_s
        stepped = self.demand.add(raw.grid_power_kw if raw.valid else None, dt_s, epoch_s)
        grid_kw = view.meter.grid_power_kw if raw.valid else None
        self.failsafe = mono_s - self._last_valid_s >= self.config.meter_timeout_s
        if self.failsafe:
            command = failsafe_command(
                view, self.ratings, goals, pv_failsafe_pct=self.config.pv_failsafe_pct
            )
            return self._decision(command, Bounds(), self._target_kw(goals), None)
        if grid_kw is None:
            return self._decision(hold_command(view), Bounds(), self._target_kw(goals), None)
        target = self._target_kw(goals)
        shave, recharge = self._levels(view, goals, target, epoch_s, stepped=stepped)
        bounds = self._bounds(view, goals, shave)
        storage_kw = sum(r.power_kw for r in view.storage if r.online)
        self.planner.observe(
            grid_kw + storage_kw, epoch_s, self._surplus_kw(view, grid_kw, bounds.floor_kw)
        )
        if self.tuning.energy_room:
            # the room spread over the time a setpoint takes to act and settle: a period, the
            # setpoints still in flight and the lag (inflight.py, energy room ruling)
            period_s = self.config.period_s
            horizon_s = period_s * (1 + self.commands.delay) + self.lag_s()
            view = energy_limited(
                view, self.ratings, horizon_s, ahead_s=period_s * self.commands.delay
            )
        self.rest = self._rest(
            view, goals, grid_kw, bounds, epoch_s=epoch_s, over_demand=target is not None
        )
        spans = class_spans(
            view,
            self.ratings,
            goals,
            self.alpha,
            self.ramp_kw,
            owed=owed,
            rest_kw=self.rest.kw,
            pv_rise_kw=rises,
        )
        plan = plan_dispatch(
            grid_power_kw=grid_kw,
            bounds=bounds,
            goals=goals,
            spans=spans,
            ramp_kw=self.ramp_kw,
            recharge_ceiling_kw=recharge,
        )
        self._asked.append(max(0.0, plan.storage_next_kw - spans.storage_kw))
        command = Command(
            storage_kw=tuple(storage_commands(view, goals, plan, self.alpha)),
            pv_limit_kw=tuple(pv_commands(view, goals, plan, spans, self.ramp_kw, owed=owed)),
            charger_limit_kw=tuple(
                charger_commands(
                    view, self.ratings, goals, plan, spans=spans, ramp_kw=self.ramp_kw, owed=owed
                )
            ),
        )
        explain = self._explain(view, grid_kw, bounds, target, shave)
        return self._decision(command, bounds, target, shave, explain=explain)

    def _levels(
        self,
        view: MeterView,
        goals: MeterGoals,
        target: float | None,
        epoch_s: float,
        *,
        stepped: bool,
    ) -> tuple[float | None, float]:
        """The level guarded (T, or the planner's) and the recharge ceiling."""
        if target is None or not goals.storage_hi:
            return target, math.inf
        buffer_kw = self.config.buffer_kw
        billed = max(target, self.demand.month_max_kw)
        recharge = min(billed - buffer_kw, self._headroom_kw(billed))
        if not self.tuning.planner_enabled:
            return target, recharge
        if stepped:
            self._level_kw = self._plan(view, epoch_s, billed - buffer_kw)
        shave = max(target, self._level_kw + buffer_kw)
        if shave > billed and not self.planner.learned() and self._holds(view, billed - buffer_kw):
            shave = billed  # on persistence alone, never lift while the energy to hold is there
        if stepped:
            battery = battery_budget(view.storage, self.ratings.storage)
            self._reserve_kwh = self.planner.reserve_kwh(
                epoch_s, level_kw=shave - buffer_kw, battery=battery
            )
            if self._reserve_kwh is None and self.tuning.rest_without_forecast:
                loads, hours = self.planner.forecast(epoch_s)
                self._persisted_kwh = reserve_kwh(
                    loads, hours, level_kw=shave - buffer_kw, battery=battery
                )
        return shave, recharge

    def _alpha(self) -> float:
        """The share of a step an actuator covers in one cycle: from the lag told, or from the
        one the storage's responses show when that is more than ``GAIN_MISMATCH`` off it (the
        lag told is one for every actuator, so it is corrected for every one)."""
        gain = self.commands.storage_gain() if self.tuning.learn_lag else None
        if gain is None or abs(gain / self.told_alpha - 1.0) <= GAIN_MISMATCH:
            return self.told_alpha
        return max(gain, MIN_GAIN)

    def lag_s(self) -> float:
        """The actuator lag in force: the one told, or the one the responses show."""
        if self.alpha == self.told_alpha:
            return self.tuning.actuator_lag_s
        return -self.config.period_s / math.log(1.0 - self.alpha) if self.alpha < 1.0 else 0.0

    def _holds(self, view: MeterView, level_kw: float) -> bool:
        """The stored energy holds ``level_kw`` for ``HOLD_H`` at the present bin's excess."""
        present = self.planner.present_kw
        if present is None:
            return True
        b = battery_budget(view.storage, self.ratings.storage)
        excess = min(max(0.0, present - level_kw), b.discharge_kw)
        return excess < b.discharge_kw and excess * HOLD_H / b.efficiency_one_way <= b.stored_kwh

    def _explain(
        self,
        view: MeterView,
        grid_kw: float,
        bounds: Bounds,
        target: float | None,
        shave: float | None,
    ) -> Explanation:
        """What bound binds, the level and why, the budget, PV held back, the window."""
        lifted = target is not None and shave is not None and shave > target + 0.5
        reason = "battery cannot hold T: the lowest level it can" if lifted else "T holds"
        binding = binding_bound(
            grid_kw, bounds, floor_source=self._floor_source, buffer_kw=self.floor_buffer_kw()
        )
        margin_kw = (
            self.floor_buffer_kw(per_phase=binding == "phase")
            if binding in ("anti-backflow", "phase")
            else self.config.buffer_kw
        )
        return Explanation(
            binding=binding,
            binding_phase=self._phase if binding == "phase" else None,
            level_kw=shave,
            level_reason=reason if shave is not None else "",
            forecast_peak_kw=self._forecast_peak_kw,
            stored_kwh=battery_budget(view.storage, self.ratings.storage).stored_kwh,
            reserve_kwh=self._reserve_kwh,
            rest_reason=self.rest.reason,
            pv_kw=sum(r.power_kw for r in view.pv if r.online),
            pv_held_back_kw=sum(
                r.rated_kw - r.limit_kw for r in view.pv if r.online and r.limit_kw < r.rated_kw
            ),
            window_running_kw=self.demand.running_kw,
            buffer_kw=margin_kw,
            notes=self.narrator.notes(
                level_kw=shave,
                target_kw=target,
                month_max_kw=self.demand.month_max_kw,
                reason=reason,
            ),
        )

    def _rest(
        self,
        view: MeterView,
        goals: MeterGoals,
        grid_kw: float,
        bounds: Bounds,
        *,
        epoch_s: float,
        over_demand: bool,
    ) -> Rest:
        """The energy policy (``rest.py``); off: the plain rule."""
        if not self.tuning.energy_policy or not goals.storage_on:
            return Rest(None, "plain rule")
        # the day's least load, observed every cycle, only where the policy that uses it runs
        least_load_kw = (
            self._least_load_kw(view, grid_kw, epoch_s)
            if self.tuning.rest_without_forecast
            else math.inf
        )
        budget = battery_budget(view.storage, self.ratings.storage)
        usable = sum(
            r.capacity_kwh * (r.soc_max_pct - r.soc_min_pct) / 100.0 for r in self.ratings.storage
        )
        guarding = over_demand and goals.storage_hi
        target_kwh = resting_kwh(
            full_kwh=usable,
            reserve_kwh=self._reserve_kwh if self.tuning.planner_enabled else None,
            surplus_kwh=self.planner.surplus_kwh(
                charge_kw=budget.charge_kw, efficiency_one_way=budget.efficiency_one_way
            ),
            over_demand=guarding,
        )
        if (
            target_kwh is None
            and guarding
            and self.tuning.planner_enabled
            and self.tuning.rest_without_forecast
        ):
            pv_kw = sum(r.power_kw for r in view.pv if r.online)
            rated_kw = sum(r.rated_kw for r in view.pv if r.online)
            hour = ((epoch_s + self._utc_offset_s(epoch_s)) % 86400.0) / 3600.0  # local
            morning = pv_morning(pv_kw=pv_kw, rated_kw=rated_kw, local_hour=hour)
            target_kwh = provisional_kwh(
                full_kwh=usable,
                persisted_kwh=self._persisted_kwh,
                room_kwh=surplus_room_kwh(pv_rated_kw=rated_kw, least_load_kw=least_load_kw),
                morning=morning,
            )
        return resting(
            storage_kw=sum(r.power_kw for r in view.storage if r.online),
            grid_kw=grid_kw,
            floor_kw=bounds.floor_kw,
            buffer_kw=self.config.buffer_kw,
            stored_kwh=budget.stored_kwh,
            target_kwh=target_kwh,
            band_kwh=0.02 * usable,
            pv_curtailed=goals.pv_lo
            and any(r.online and r.limit_kw < r.rated_kw - 0.5 for r in view.pv),
            unseen_kw=sum(self._asked) if self.tuning.serve_unseen else 0.0,
        )

    def _least_load_kw(self, view: MeterView, grid_kw: float, epoch_s: float) -> float:
        """The least site load (grid + storage + PV output) seen since local midnight."""
        load_kw = (
            grid_kw
            + sum(r.power_kw for r in view.storage if r.online)
            + sum(r.power_kw for r in view.pv if r.online)
        )
        day = int((epoch_s + self._utc_offset_s(epoch_s)) // 86400.0)
        seen_day, least = self._least_load
        least = min(load_kw, least) if seen_day == day else load_kw
        self._least_load = (day, least)
        return least

    def _utc_offset_s(self, epoch_s: float) -> float:
        """The zone's UTC offset, looked up once per hour."""
        hour = int(epoch_s // 3600.0)
        if self._offset[0] != hour:
            offset = datetime.fromtimestamp(epoch_s, self.zone).utcoffset()
            self._offset = (hour, offset.total_seconds() if offset is not None else 0.0)
        return self._offset[1]

    def _surplus_kw(self, view: MeterView, grid_kw: float, floor_kw: float) -> float:
        """PV the site could not use now: while the floor binds, what storage absorbs plus
        the curtailment in force (the gap to the rating: an upper bound, the sun may give
        less); 0 when import is above the floor (a refill from the grid is no surplus)."""
        if not math.isfinite(floor_kw) or grid_kw > floor_kw + 2.0 * self.config.buffer_kw:
            return 0.0
        pv_kw = sum(r.power_kw for r in view.pv if r.online)
        charging = sum(max(0.0, -r.power_kw) for r in view.storage if r.online)
        curtailed = sum(
            r.rated_kw - r.limit_kw for r in view.pv if r.online and r.limit_kw < r.rated_kw - 0.5
        )
        return min(charging, pv_kw) + curtailed

    def _headroom_kw(self, billed_kw: float) -> float:
        """Window-aware recharge: no refill that lifts a window still holding an excess."""
        if not self.tuning.window_recharge:
            return math.inf
        return self.demand.headroom_kw(billed_kw - self.config.buffer_kw)

    def _aligned(self, view: MeterView) -> MeterView:
        """The view with the meter moved to *now* when it is late (``latency.py``); the meter's
        noise is measured either way."""
        net_kw = (
            sum(r.power_kw for r in view.storage if r.online)
            + sum(r.power_kw for r in view.pv if r.online)
            - sum(r.power_kw for r in view.chargers if r.online)
        )
        meter = view.meter
        self.alignment.observe(meter.grid_power_kw, net_kw)
        fix = self.alignment.correction_kw()
        if fix == 0.0 or not self.tuning.align_meter:
            return view
        phases = meter.phase_power_kw
        each = fix / 3.0
        moved = None if phases is None else (phases[0] + each, phases[1] + each, phases[2] + each)
        return replace(
            view,
            meter=replace(meter, grid_power_kw=meter.grid_power_kw + fix, phase_power_kw=moved),
        )

    def floor_buffer_kw(self, *, per_phase: bool = False) -> float:
        """The floors' margin: the configured buffer, or 5 sigma of the measured noise."""
        if not self.tuning.noise_buffer:
            return self.config.buffer_kw
        sigma = self.alignment.noise_kw / (math.sqrt(3.0) if per_phase else 1.0)
        return max(self.config.buffer_kw, 5.0 * sigma)

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
        self._floor_source = None
        if goals.streaming_kw is not None:
            floors.append(
                backflow_floor_kw(streaming_kw=goals.streaming_kw, buffer_kw=self.floor_buffer_kw())
            )
            self._floor_source = "anti-backflow"
        phases = view.meter.phase_power_kw
        if goals.phase_kw is not None and phases is not None:
            floors.append(
                phase_floor_kw(
                    grid_power_kw=view.meter.grid_power_kw,
                    phase_power_kw=phases,
                    phase_kw=goals.phase_kw,
                    buffer_kw=self.floor_buffer_kw(per_phase=True),
                )
            )
            if len(floors) == 1 or floors[-1] > floors[0]:
                self._floor_source = "phase"
                self._phase = "ABC"[phases.index(min(phases))]
        if shave_kw is not None:
            ceilings.append(over_demand_ceiling_kw(target_kw=shave_kw, buffer_kw=buffer_kw))
        return combine_bounds(floors, ceilings)

    def _plan(self, view: MeterView, epoch_s: float, floor_kw: float) -> float:
        """Lowest import level >= ``floor_kw`` the battery can hold (a peak already billed
        is free, so the floor is the higher of T and the month's maximum, minus the buffer)."""
        battery = battery_budget(view.storage, self.ratings.storage)
        loads, _ = self.planner.forecast(epoch_s)
        self._forecast_peak_kw = max(loads) if loads else None
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
        *,
        explain: Explanation | None = None,
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
            explain=explain or EMPTY,
        )
