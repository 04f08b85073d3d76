"""Strategy input of the control engine, and how strategies on one meter become goals (D19).

The lead converts stored MQTT strategies into :class:`StrategyParams`; the engine never sees
wire fields. One strategy per (meter, device type) (D7); every strategy on a meter adds its
bounds to that meter's decision, and each device class acts only for the goals its own
strategy enables.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from gridguard.vocab import DeviceClass

DEVICE_STORAGE: Final = DeviceClass.STORAGE
DEVICE_PV: Final = DeviceClass.PV
DEVICE_CHARGER: Final = DeviceClass.CHARGER


@dataclass(frozen=True, slots=True)
class StrategyParams:
    """One strategy, in control units (kW, %), as the engine uses it."""

    meter_id: int
    device_type: int  # 2 storage, 3 PV, 4 charging pile (D7)
    streaming_enabled: bool  # D15 anti-backflow
    streaming_kw: float  # D15 baseline X: keep import >= X
    phase_enabled: bool  # D16 single-phase anti-backflow
    phase_kw: float  # D16 baseline Y per phase
    over_demand_enabled: bool  # D17
    over_demand_monthly_kw: tuple[int, ...]  # D14: 12 values, Jan..Dec
    dynamic_enabled: bool  # D18
    dynamic_pct: float  # D18 p, in (0, 100]


@dataclass(frozen=True, slots=True)
class ControlTuning:
    """Controller knobs that are not (yet) in the site file's [control] section."""

    actuator_lag_s: float = 0.0
    """Expected first-order lag of the actuators; the law pre-compensates it (0 = none)."""
    planner_enabled: bool = True
    """Raise the shaving level when the learned load forecast says the battery cannot hold T."""
    profile_weight: float = 0.3
    """Weight of the newest day in the learned load profile (exponential average)."""
    meter_delay_s: float = 0.0
    """How late the meter's reading is known to be (whole periods): the delay in force unless
    the readings prove another, and the one taken back when that proof fades."""
    align_meter: bool = True
    """Time-align the meter with the devices' readings at the delay in force (latency.py)."""
    identify_meter_delay: bool = True
    """Let consistent, significant evidence from the readings replace ``meter_delay_s``."""
    command_delay_s: float = 0.0
    """How late a written setpoint acts (whole periods): the delay in force unless the
    devices' responses prove another, and the one taken back when that proof fades."""
    align_commands: bool = True
    """Decide on the view as it will be when this cycle's setpoints act (inflight.py)."""
    identify_command_delay: bool = True
    """Let consistent, significant evidence from storage responses replace ``command_delay_s``."""
    noise_buffer: bool = True
    """Widen the floors' buffer to 5 sigma of the meter noise measured online."""
    energy_room: bool = True
    """Cap next cycle's charge (discharge) by the energy left in the SOC window."""
    window_recharge: bool = True
    """Refill only as fast as the 15-min windows still holding a past excess allow."""
    energy_policy: bool = True
    """Rest at a reserve from the forecast and serve the site's load above it (rest.py)."""
    pv_climb: bool = True
    """Count a PV output's climb still to come (the sun back after a cloud, followed with the
    inverter's lag) as a rise pending next cycle (rise.py)."""
    serve_unseen: bool = True
    """Serving the load asks a further discharge rise only beyond the rises asked over the
    last cycles that the meter may not show yet (rest.py's ``serving_kw``)."""
    learn_lag: bool = True
    """Pre-compensate with the lag the storage's responses show (inflight.py's
    ``storage_gain``) when that is more than 25 % off the lag told."""
    rest_without_forecast: bool = True
    """Before the forecast is learned, rest below full during the PV's morning (rest.py's
    ``provisional_kwh``). On by default since the rules that keep a working battery off the
    floor (rise.py, rest.serving_kw, the lag learned from storage responses): on the three day
    scenarios x six plants it left no second below a floor outside the settle window, as with
    it off, and cut curtailment 303.5 -> 31.2 kWh (factory day) and 1,072 -> 765 kWh (broken
    cloud day); see docs/control.md."""


@dataclass(frozen=True, slots=True)
class MeterGoals:
    """What the strategies on one meter ask for, combined (D19)."""

    streaming_kw: float | None  # None: no anti-backflow on this meter
    phase_kw: float | None  # None: no single-phase anti-backflow
    over_demand: tuple[StrategyParams, ...]  # strategies with over-demand on (D17)
    storage_lo: bool  # storage acts for anti-backflow (D15/D16)
    storage_hi: bool  # storage acts for over-demand (D17)
    storage_on: bool  # storage has any enabled goal
    pv_lo: bool  # PV curtails for anti-backflow
    charger_hi: bool  # piles are throttled for over-demand


def _max_or_none(values: list[float]) -> float | None:
    return max(values) if values else None


def goals_for_meter(strategies: list[StrategyParams], meter_id: int) -> MeterGoals:
    """Combine the strategies of one meter: the most restrictive baseline wins (D19)."""
    mine = [s for s in strategies if s.meter_id == meter_id]

    def lo(s: StrategyParams) -> bool:
        return s.streaming_enabled or s.phase_enabled

    def on(s: StrategyParams) -> bool:
        return lo(s) or s.over_demand_enabled or s.dynamic_enabled

    by_type = {t: [s for s in mine if s.device_type == t] for t in DeviceClass}
    return MeterGoals(
        streaming_kw=_max_or_none([s.streaming_kw for s in mine if s.streaming_enabled]),
        phase_kw=_max_or_none([s.phase_kw for s in mine if s.phase_enabled]),
        over_demand=tuple(s for s in mine if s.over_demand_enabled),
        storage_lo=any(lo(s) for s in by_type[DEVICE_STORAGE]),
        storage_hi=any(s.over_demand_enabled for s in by_type[DEVICE_STORAGE]),
        storage_on=any(on(s) for s in by_type[DEVICE_STORAGE]),
        pv_lo=any(lo(s) for s in by_type[DEVICE_PV]),
        charger_hi=any(s.over_demand_enabled for s in by_type[DEVICE_CHARGER]),
    )
