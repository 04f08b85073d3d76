"""The energy policy without a learned forecast: room for the PV surplus the day brings."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gridguard.control.controller import Decision, MeterController
from gridguard.control.demand import DemandMeter
from gridguard.control.dispatch.rest import (
    MIN_RESERVE_SHARE,
    provisional_kwh,
    pv_morning,
    surplus_room_kwh,
)
from gridguard.control.params import ControlTuning, MeterGoals
from gridguard.lab.closedloop import simulate
from gridguard.plant.model import PlantInputs, PlantParams, PlantState, StorageParams
from gridguard.site.config import ControlConfig
from tests.control.helpers import ZONE, battery, goals, inverter, ratings, strategy, view

MONDAY = 1717344000.0  # 2024-06-03 00:00 Asia/Shanghai
HOUR = 3600.0
ODM = (400,) * 12
GUARDED = goals(strategy(2, streaming_kw=0.0, over_demand=ODM), strategy(3, streaming_kw=0.0))
FULL_KWH = 425.0  # 500 kWh, 10-95 %


@pytest.mark.unit
@pytest.mark.parametrize(
    ("pv_kw", "hour", "expected"),
    [
        (300.0, 8.0, True),  # the sun is up, the PV's surplus is still to come
        (20.0, 8.0, False),  # dawn: under 5 % of the rating, the sun is not up yet
        (300.0, 12.5, False),  # from noon on: rest full for the afternoon
        (0.0, 2.0, False),  # night
    ],
    ids=["morning", "dawn", "afternoon", "night"],
)
def test_pv_morning(pv_kw: float, hour: float, expected: bool) -> None:
    assert pv_morning(pv_kw=pv_kw, rated_kw=600.0, local_hour=hour) is expected


@pytest.mark.unit
def test_no_pv_has_no_morning() -> None:
    assert not pv_morning(pv_kw=0.0, rated_kw=0.0, local_hour=9.0)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("persisted_kwh", "room_kwh", "morning", "expected"),
    [
        (0.0, 960.0, True, MIN_RESERVE_SHARE * FULL_KWH),  # nothing presses: the least reserve
        (160.0, 960.0, True, 1.25 * 160.0 + 0.05 * FULL_KWH),  # the present excess, persisted
        (400.0, 960.0, True, FULL_KWH),  # it can never be more than full
        (0.0, 208.0, True, FULL_KWH - 208.0),  # a small PV: only the room its surplus needs
        (0.0, 0.0, True, FULL_KWH),  # a PV below the site's load: nothing to make room for
        (0.0, 960.0, False, None),  # outside the PV's morning: full, as before
    ],
    ids=["least", "persisted", "capped-full", "small-pv", "no-surplus", "not-morning"],
)
def test_provisional_reserve(
    persisted_kwh: float, room_kwh: float, morning: bool, expected: float | None
) -> None:
    got = provisional_kwh(
        full_kwh=FULL_KWH, persisted_kwh=persisted_kwh, room_kwh=room_kwh, morning=morning
    )
    assert got == (None if expected is None else pytest.approx(expected))


@pytest.mark.unit
@pytest.mark.parametrize(
    ("rated_kw", "least_kw", "expected"),
    [(600.0, 120.0, 960.0), (250.0, 146.0, 208.0), (250.0, 400.0, 0.0)],
    ids=["factory", "small-pv", "pv-below-load"],
)
def test_surplus_room(rated_kw: float, least_kw: float, expected: float) -> None:
    assert surplus_room_kwh(pv_rated_kw=rated_kw, least_load_kw=least_kw) == pytest.approx(expected)


def planned() -> MeterController:
    return MeterController(
        ratings=ratings(1),
        config=ControlConfig(),
        tuning=ControlTuning(rest_without_forecast=True),
        zone=ZONE,
    )


@pytest.mark.unit
@pytest.mark.parametrize(
    ("hour", "pv_kw", "soc_pct", "storage_kw", "reason"),
    [
        # 08:00, PV up, 50 kW import under T = 400, site load 350 under the 600 kW PV: room
        # for (600 - 350) x 2 h is all of it, so rest at the least reserve (106 kWh) and serve
        # the load: discharge to the floor 2 + buffer 2
        (8.0, 300.0, 50.0, 46.0, "serve the site's load"),
        # the same at 14:00: the PV is past its morning, refill toward full (ramped)
        (14.0, 300.0, 50.0, -50.0, "full: forecast not learned yet"),
        # the same at night: full, as before
        (2.0, 0.0, 50.0, -50.0, "full: forecast not learned yet"),
        # 11:30 at the least reserve (106 kWh): hold; from noon on it refills instead
        (11.5, 300.0, 31.25, 0.0, "hold"),
        (12.5, 300.0, 31.25, -50.0, "full: forecast not learned yet"),
        # 08:00 at 25 %: 75 kWh stored, under the least reserve (106 kWh, band 8.5): refill
        (8.0, 300.0, 25.0, -50.0, "refill to the resting energy"),
    ],
    ids=[
        "morning-serves",
        "afternoon-refills",
        "night-refills",
        "morning-holds-at-reserve",
        "noon-refills",
        "morning-keeps-reserve",
    ],
)
def test_cycle_rest_without_a_learned_forecast(
    hour: float, pv_kw: float, soc_pct: float, storage_kw: float, reason: str
) -> None:
    ctl = planned()
    v = view(50.0, storage=(battery(soc_pct=soc_pct),), pv=(inverter(pv_kw),))
    command = ctl.decide(v, GUARDED, 0.0, MONDAY + hour * HOUR).command
    assert command.storage_kw == pytest.approx((storage_kw,), abs=0.01)
    assert command.pv_limit_kw == pytest.approx((600.0,))
    assert ctl.rest.reason == reason


def _morning_then_lunch(t: int) -> PlantInputs:
    """09:00-09:30 load 500 under 300 kW of PV (import 200); 09:30-09:45 the load drops to 100
    under 350 kW of PV: 250 kW of surplus for a quarter of an hour (62.5 kWh)."""
    if t < 1800:
        return PlantInputs((500.0 / 3,) * 3, (300.0,), ())
    return PlantInputs((100.0 / 3,) * 3, (350.0,), ())


def _run(
    tuning: ControlTuning,
    world: Callable[[int], PlantInputs],
    seconds: int,
    g: MeterGoals,
    *,
    start_h: float = 9.0,
    soc_pct: float = 95.0,
) -> tuple[float, float]:
    """Curtailed PV (kWh) and the 15-min demand maximum over the run."""
    params = PlantParams(
        (StorageParams(250.0, 500.0, 10.0, 95.0, 0.92),), (600.0,), (), meter_noise_kw=0.2
    )
    ctl = MeterController(ratings=ratings(1), config=ControlConfig(), tuning=tuning, zone=ZONE)
    start = MONDAY + start_h * HOUR
    demand = DemandMeter(window_s=900, step_s=60, zone=ZONE)
    curtailed = [0.0]

    def step(t: int, inputs: PlantInputs, state: PlantState, _d: Decision) -> None:
        demand.add(state.grid_power_kw, 1.0, start + t)
        curtailed[0] += (sum(inputs.pv_available_kw) - sum(state.pv_power_kw)) / HOUR

    simulate(
        params,
        ctl,
        lambda _t: g,
        world,
        seconds=seconds,
        start_epoch_s=start,
        soc_pct=(soc_pct,),
        on_step=step,
    )
    return curtailed[0], demand.month_max_kw


@pytest.mark.slow
def test_a_full_battery_makes_room_in_the_pv_morning_without_a_forecast() -> None:
    """Energy policy, no learned forecast: a full battery serves the site's load while import
    is well below T and the PV is in its morning, so the lunch surplus is stored, not curtailed.
    Resting full (the policy off, as before the rule) curtails most of the 62.5 kWh surplus."""
    curtailed, peak = _run(
        ControlTuning(rest_without_forecast=True), _morning_then_lunch, 2700, GUARDED
    )
    before, _ = _run(ControlTuning(energy_policy=False), _morning_then_lunch, 2700, GUARDED)
    assert before > 50.0  # the test can fail: resting full wastes the surplus
    assert curtailed < 5.0
    assert peak <= 400.0


def _lunch_then_hump(t: int) -> PlantInputs:
    """From 11:00: load 250 under 200 kW of PV (import 50) until 13:00, then an afternoon hump:
    load 700 (import 500, 100 kW over T = 400) for an hour."""
    load_kw = 250.0 if t < 7200 else 700.0
    return PlantInputs((load_kw / 3,) * 3, (200.0,), ())


@pytest.mark.slow
def test_from_noon_the_battery_refills_for_the_afternoon(monkeypatch: pytest.MonkeyPatch) -> None:
    """Energy policy, no learned forecast: the room made in the PV's morning ends at local noon,
    so the battery refills over lunch and holds T through the afternoon hump (100 kWh of
    excess). Kept at the provisional reserve until 13:00 (the cut-off before this rule), it
    misses the refill, cannot cover 2 h of the excess (``HOLD_H``), and the level is lifted."""

    def afternoon_peak_kw() -> float:
        tuning = ControlTuning(rest_without_forecast=True)
        _, peak_kw = _run(tuning, _lunch_then_hump, 3 * 3600, GUARDED, start_h=11.0, soc_pct=40.0)
        return peak_kw

    peak = afternoon_peak_kw()
    monkeypatch.setattr("gridguard.control.dispatch.rest.PV_MORNING_END_H", 13.0)
    late = afternoon_peak_kw()
    assert late > 410.0  # the test can fail: a battery still at its reserve at 13:00
    assert peak <= 400.0
