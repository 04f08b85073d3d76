"""Plant model: one gateway meter and the devices behind it, as pure physics.

``step(params, state, inputs, setpoints, dt_s)`` returns the next state; nothing here reads a
clock or keeps a global. The controller never sees this module's state directly: it sees what
a meter and the devices report (``measure`` and the fakes in ``gridguard.devices.fakes``).

Sign conventions (as everywhere, see ``gridguard.vocab``): grid power + import / - export, storage
power + discharge / - charge, PV and charging-pile power >= 0.

Physics:

* every actuator moves toward its clamped target with a first-order lag of time constant
  ``actuator_lag_s`` (exact discretisation, so any ``dt_s`` gives the same trajectory);
* storage is clamped by its power rating and its SOC window (no discharge at ``soc_min_pct``,
  no charge at ``soc_max_pct``, and never more energy than the window holds within one step);
  with ``bms_taper_pct`` > 0 its BMS also tapers the power near the window's edges
  (``bms_limits_kw``, which is what the PCS reports as its max charge / discharge);
  SOC integrates with ``sqrt(efficiency)`` each way (``efficiency`` is round-trip);
* PV output = min(available, limit), and never above what is available at this instant;
* a charging pile draws min(vehicle demand, limit), but a limit below ``min_kw`` pauses it;
* storage, PV and piles are three-phase and spread their power equally over the phases:
  ``grid_phase = load_phase - (storage + pv - chargers) / 3``.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

_SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True, slots=True)
class StorageParams:
    power_kw: float
    energy_kwh: float
    soc_min_pct: float
    soc_max_pct: float
    efficiency: float  # round-trip, e.g. 0.92
    bms_taper_pct: float = 0.0  # BMS: charge (discharge) limit falls linearly to 0 over this
    # many SOC points below soc_max (above soc_min); 0 = full power up to the window's edge


def bms_limits_kw(p: StorageParams, soc_pct: float) -> tuple[float, float]:
    """What the BMS allows now: (max charge, max discharge) in kW, 0 at full / at empty."""
    if p.bms_taper_pct <= 0.0:
        chg = 0.0 if soc_pct >= p.soc_max_pct - 0.01 else p.power_kw
        dis = 0.0 if soc_pct <= p.soc_min_pct + 0.01 else p.power_kw
        return chg, dis
    chg = p.power_kw * min(1.0, max(0.0, (p.soc_max_pct - soc_pct) / p.bms_taper_pct))
    dis = p.power_kw * min(1.0, max(0.0, (soc_pct - p.soc_min_pct) / p.bms_taper_pct))
    return chg, dis


@dataclass(frozen=True, slots=True)
class ChargerParams:
    rated_kw: float
    min_kw: float


@dataclass(frozen=True, slots=True)
class PlantParams:
    storage: tuple[StorageParams, ...]
    pv_rated_kw: tuple[float, ...]  # one entry per PV inverter
    chargers: tuple[ChargerParams, ...]
    actuator_lag_s: float = 1.0  # first-order lag of every actuator
    meter_noise_kw: float = 0.0  # std-dev of meter noise, per phase
    meter_delay_s: float = 0.0  # the meter's reading is this old when the controller gets it
    command_delay_s: float = 0.0  # a written setpoint takes effect this much later


@dataclass(frozen=True, slots=True)
class PlantInputs:
    """The world, at this instant."""

    load_phase_kw: tuple[float, float, float]  # site load per phase (A, B, C), kW >= 0
    pv_available_kw: tuple[float, ...]  # what each inverter could produce now, kW
    charger_demand_kw: tuple[float, ...]  # what each vehicle would draw unthrottled (0 = none)


@dataclass(frozen=True, slots=True)
class PlantSetpoints:
    storage_kw: tuple[float, ...]  # + discharge / - charge
    pv_limit_kw: tuple[float, ...]
    charger_limit_kw: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class PlantState:
    storage_power_kw: tuple[float, ...]  # actual, + discharge
    storage_soc_pct: tuple[float, ...]
    pv_power_kw: tuple[float, ...]
    charger_power_kw: tuple[float, ...]
    grid_phase_kw: tuple[float, float, float]  # + import, true value (no noise)

    @property
    def grid_power_kw(self) -> float:
        """Total grid power in kW (+ import), the sum of the phases."""
        a, b, c = self.grid_phase_kw
        return a + b + c


def initial_state(params: PlantParams, soc_pct: tuple[float, ...]) -> PlantState:
    """All actuators at rest, the given SOC per storage unit, no load."""
    if len(soc_pct) != len(params.storage):
        raise ValueError("one soc_pct per storage unit")
    return PlantState(
        storage_power_kw=tuple(0.0 for _ in params.storage),
        storage_soc_pct=tuple(soc_pct),
        pv_power_kw=tuple(0.0 for _ in params.pv_rated_kw),
        charger_power_kw=tuple(0.0 for _ in params.chargers),
        grid_phase_kw=(0.0, 0.0, 0.0),
    )


def lag_fraction(lag_s: float, dt_s: float) -> float:
    """How far a first-order actuator moves toward its target within ``dt_s`` (0..1)."""
    if lag_s <= 0.0:
        return 1.0
    return 1.0 - math.exp(-dt_s / lag_s)


def _storage_step(
    p: StorageParams,
    power_kw: float,
    soc_pct: float,
    target_kw: float,
    *,
    alpha: float,
    dt_s: float,
) -> tuple[float, float]:
    hours = dt_s / _SECONDS_PER_HOUR
    eta = math.sqrt(p.efficiency)
    window_kwh = p.energy_kwh / 100.0
    bms_chg, bms_dis = bms_limits_kw(p, soc_pct) if p.bms_taper_pct > 0.0 else (p.power_kw,) * 2
    max_dis = min(bms_dis, max(0.0, (soc_pct - p.soc_min_pct) * window_kwh * eta / hours))
    max_chg = min(bms_chg, max(0.0, (p.soc_max_pct - soc_pct) * window_kwh / eta / hours))
    target = min(max(target_kw, -max_chg), max_dis)
    new_kw = power_kw + alpha * (target - power_kw)
    new_kw = min(max(new_kw, -max_chg), max_dis)
    if new_kw >= 0.0:
        soc = soc_pct - new_kw * hours / eta / window_kwh
    else:
        soc = soc_pct - new_kw * hours * eta / window_kwh
    return new_kw, min(max(soc, 0.0), 100.0)


def step(
    params: PlantParams,
    state: PlantState,
    inputs: PlantInputs,
    setpoints: PlantSetpoints,
    dt_s: float,
) -> PlantState:
    """Advance the plant by ``dt_s`` seconds under ``setpoints``; pure."""
    alpha = lag_fraction(params.actuator_lag_s, dt_s)
    storage = [
        _storage_step(p, kw, soc, target, alpha=alpha, dt_s=dt_s)
        for p, kw, soc, target in zip(
            params.storage,
            state.storage_power_kw,
            state.storage_soc_pct,
            setpoints.storage_kw,
            strict=True,
        )
    ]
    pv = tuple(
        min(avail, kw + alpha * (min(avail, max(0.0, min(limit, rated))) - kw))
        for kw, avail, limit, rated in zip(
            state.pv_power_kw,
            inputs.pv_available_kw,
            setpoints.pv_limit_kw,
            params.pv_rated_kw,
            strict=True,
        )
    )
    chargers = tuple(
        _charger_step(c, kw, demand, limit, alpha)
        for c, kw, demand, limit in zip(
            params.chargers,
            state.charger_power_kw,
            inputs.charger_demand_kw,
            setpoints.charger_limit_kw,
            strict=True,
        )
    )
    devices_per_phase_kw = (sum(s[0] for s in storage) + sum(pv) - sum(chargers)) / 3.0
    a, b, c = inputs.load_phase_kw
    return PlantState(
        storage_power_kw=tuple(s[0] for s in storage),
        storage_soc_pct=tuple(s[1] for s in storage),
        pv_power_kw=pv,
        charger_power_kw=chargers,
        grid_phase_kw=(
            a - devices_per_phase_kw,
            b - devices_per_phase_kw,
            c - devices_per_phase_kw,
        ),
    )


def _charger_step(
    c: ChargerParams, power_kw: float, demand_kw: float, limit_kw: float, alpha: float
) -> float:
    limit = min(max(limit_kw, 0.0), c.rated_kw)
    target = 0.0 if limit < c.min_kw or limit <= 0.0 else min(max(demand_kw, 0.0), limit)
    return min(max(demand_kw, 0.0), power_kw + alpha * (target - power_kw))


def measure(
    params: PlantParams, state: PlantState, rng: random.Random | None
) -> tuple[float, float, float]:
    """Per-phase grid kW as the meter sees it (with noise when rng is given)."""
    a, b, c = state.grid_phase_kw
    sigma = params.meter_noise_kw
    if rng is None or sigma <= 0.0:
        return (a, b, c)
    return (a + rng.gauss(0.0, sigma), b + rng.gauss(0.0, sigma), c + rng.gauss(0.0, sigma))
