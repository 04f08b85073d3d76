"""The plant model: lag, clamps, SOC window and efficiency, PV and pile limits, the meter."""

from __future__ import annotations

import math
import random

import pytest

from gridguard.plant.model import (
    ChargerParams,
    PlantInputs,
    PlantParams,
    PlantSetpoints,
    PlantState,
    StorageParams,
    initial_state,
    measure,
    step,
)

pytestmark = pytest.mark.unit

LAG1 = 1 - math.exp(-1)
BAT = StorageParams(
    power_kw=100.0, energy_kwh=200.0, soc_min_pct=10.0, soc_max_pct=90.0, efficiency=0.81
)


def plant(lag_s: float = 0.0, noise_kw: float = 0.0) -> PlantParams:
    return PlantParams(
        storage=(BAT,),
        pv_rated_kw=(300.0,),
        chargers=(ChargerParams(rated_kw=60.0, min_kw=7.0),),
        actuator_lag_s=lag_s,
        meter_noise_kw=noise_kw,
    )


def inputs(load_kw: float = 90.0, pv_kw: float = 200.0, ev_kw: float = 40.0) -> PlantInputs:
    return PlantInputs((load_kw / 3,) * 3, (pv_kw,), (ev_kw,))


def setpoints(storage_kw: float = 0.0, pv_kw: float = 300.0, ev_kw: float = 60.0) -> PlantSetpoints:
    return PlantSetpoints((storage_kw,), (pv_kw,), (ev_kw,))


def one_step(
    sp: PlantSetpoints,
    *,
    soc: float = 50.0,
    lag_s: float = 0.0,
    dt_s: float = 1.0,
    world: PlantInputs | None = None,
) -> PlantState:
    params = plant(lag_s)
    return step(params, initial_state(params, (soc,)), world or inputs(), sp, dt_s)


@pytest.mark.parametrize(
    ("sp", "soc", "lag_s", "expected"),
    [
        (setpoints(50.0), 50.0, 0.0, (50.0, 200.0, 40.0)),  # no lag: at the target at once
        (setpoints(50.0), 50.0, 1.0, (50.0 * LAG1, 200.0 * LAG1, 40.0 * LAG1)),  # 1 s lag
        (setpoints(500.0), 50.0, 0.0, (100.0, 200.0, 40.0)),  # clamped to the power rating
        (setpoints(50.0), 10.0, 0.0, (0.0, 200.0, 40.0)),  # empty: no discharge at soc_min
        (setpoints(-50.0), 90.0, 0.0, (0.0, 200.0, 40.0)),  # full: no charge at soc_max
        (setpoints(0.0, pv_kw=120.0), 50.0, 0.0, (0.0, 120.0, 40.0)),  # PV held by its limit
        (setpoints(0.0, ev_kw=20.0), 50.0, 0.0, (0.0, 200.0, 20.0)),  # pile held by its limit
        (setpoints(0.0, ev_kw=5.0), 50.0, 0.0, (0.0, 200.0, 0.0)),  # below min_kw: paused
        (setpoints(0.0, pv_kw=-10.0, ev_kw=-5.0), 50.0, 0.0, (0.0, 0.0, 0.0)),  # negatives -> 0
    ],
    ids=[
        "no-lag",
        "lag",
        "power-clamp",
        "soc-min",
        "soc-max",
        "pv-limit",
        "pile-limit",
        "pile-paused",
        "negative-limits",
    ],
)
def test_step_actuators(
    sp: PlantSetpoints, soc: float, lag_s: float, expected: tuple[float, float, float]
) -> None:
    s = one_step(sp, soc=soc, lag_s=lag_s)
    got = (s.storage_power_kw[0], s.pv_power_kw[0], s.charger_power_kw[0])
    assert got == pytest.approx(expected)


def test_grid_is_load_minus_devices_per_phase() -> None:
    """grid_phase = load_phase - (storage + pv - piles) / 3; total is the sum."""
    world = PlantInputs((100.0, 50.0, 20.0), (90.0,), (30.0,))
    s = one_step(setpoints(30.0), world=world)
    shift = (30.0 + 90.0 - 30.0) / 3
    assert s.grid_phase_kw == pytest.approx((100 - shift, 50 - shift, 20 - shift))
    assert s.grid_power_kw == pytest.approx(170.0 - 90.0)


def test_pv_never_above_available_when_clouds_come() -> None:
    """Output drops with the sun at once, even with actuator lag."""
    params = plant(lag_s=5.0)
    s = initial_state(params, (50.0,))
    for _ in range(60):
        s = step(params, s, inputs(pv_kw=250.0), setpoints(), 1.0)
    s = step(params, s, inputs(pv_kw=40.0), setpoints(), 1.0)
    assert s.pv_power_kw[0] == pytest.approx(40.0)


def test_soc_integrates_with_sqrt_efficiency_each_way() -> None:
    """1 h at 50 kW out of 200 kWh at 81 % round trip: -50 / 0.9 / 200 = -27.8 %, +22.5 % in."""
    out = one_step(setpoints(50.0), dt_s=3600.0)
    assert out.storage_soc_pct[0] == pytest.approx(50.0 - 50 / 0.9 / 200 * 100)
    back = one_step(setpoints(-50.0), dt_s=3600.0)
    assert back.storage_soc_pct[0] == pytest.approx(50.0 + 50 * 0.9 / 200 * 100)


def test_storage_stops_at_the_window_within_a_step() -> None:
    """A long step cannot take the SOC past soc_min: the power is limited to the energy left."""
    s = one_step(setpoints(100.0), soc=12.0, dt_s=3600.0)
    assert s.storage_soc_pct[0] == pytest.approx(10.0)
    assert s.storage_power_kw[0] == pytest.approx(2 / 100 * 200 * 0.9)


def test_lag_is_exact_whatever_the_step() -> None:
    """Ten 0.1 s steps land where one 1 s step does (exact discretisation)."""
    params = plant(lag_s=1.0)
    fine = initial_state(params, (50.0,))
    for _ in range(10):
        fine = step(params, fine, inputs(), setpoints(80.0), 0.1)
    coarse = step(params, initial_state(params, (50.0,)), inputs(), setpoints(80.0), 1.0)
    assert fine.storage_power_kw[0] == pytest.approx(coarse.storage_power_kw[0])


def test_measure_noise_only_with_rng() -> None:
    """Without an rng the meter is exact; with one it is noisy and reproducible by seed."""
    params = plant(noise_kw=1.0)
    s = one_step(setpoints(), world=inputs())
    assert measure(params, s, None) == s.grid_phase_kw
    a = measure(params, s, random.Random(7))
    assert a == measure(params, s, random.Random(7))
    assert a != s.grid_phase_kw


def test_initial_state_needs_one_soc_per_unit() -> None:
    with pytest.raises(ValueError, match="one soc_pct"):
        initial_state(plant(), ())
