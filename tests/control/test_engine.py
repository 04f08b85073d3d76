"""The async cycle against in-process fakes on a fake clock: I/O, fail-safe, events, status."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from gridguard.clock import FakeClock
from gridguard.control.engine import ControlEngine, meter_ratings
from gridguard.control.params import ControlTuning, StrategyParams, goals_for_meter
from gridguard.control.status import ControlEvent
from gridguard.control.store import MemoryStateStore
from gridguard.devices.fakes import FakeSite
from gridguard.plant.model import PlantInputs
from gridguard.site.config import (
    ChargerConfig,
    ControlConfig,
    DeviceIdentity,
    MeterConfig,
    PvConfig,
    SiteConfig,
    StorageConfig,
)
from gridguard.testing.wait import wait_for
from tests.control.helpers import strategy

START = datetime(2024, 6, 3, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
SUNNY = PlantInputs((70.0, 70.0, 70.0), (500.0,), (0.0,))  # 210 kW load, 500 kW of sun
BACKFLOW = [strategy(2, streaming_kw=0.0), strategy(3, streaming_kw=0.0)]


def site_config(period_s: float = 1.0) -> SiteConfig:
    return SiteConfig(
        device=DeviceIdentity(uid="gg-test"),
        control=ControlConfig(period_s=period_s),
        meters=[MeterConfig(id=9)],
        storage=[StorageConfig(id=3, meter_id=9, rated_kw=100, capacity_kwh=200)],
        pv=[PvConfig(id=5, meter_id=9, rated_kw=600)],
        chargers=[ChargerConfig(id=6, meter_id=9, rated_kw=60, min_kw=7)],
    )


class Rig:
    def __init__(
        self,
        world: PlantInputs = SUNNY,
        *,
        period_s: float = 1.0,
        store: MemoryStateStore | None = None,
        soc_pct: float = 50.0,
    ) -> None:
        self.clock = FakeClock(START)
        self.site = site_config(period_s)
        self.fakes = FakeSite(self.site, self.clock, {9: world}, soc_pct=soc_pct)
        self.plant = self.fakes.plants[9]
        self.events: list[ControlEvent] = []
        self.store = store or MemoryStateStore()
        self.engine = ControlEngine(
            self.site,
            self.fakes.devices(),
            self.clock,
            self.store,
            self.events.append,
            tuning=ControlTuning(actuator_lag_s=1.0),
        )

    async def cycles(self, n: int) -> None:
        for _ in range(n):
            await self.engine.run_cycle()
            self.clock.advance(self.site.control.period_s)

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]


def on9(*strategies: StrategyParams) -> list[StrategyParams]:
    return [replace(s, meter_id=9) for s in strategies]


@pytest.mark.unit
async def test_cycle_keeps_backflow_out_and_publishes_status() -> None:
    """read -> decide -> write: 290 kW of surplus absorbed; status carries every field."""
    rig = Rig()
    rig.engine.set_strategies(on9(*BACKFLOW))
    await rig.cycles(20)
    assert rig.plant.state.grid_power_kw >= 0.0
    status = rig.engine.status()
    meter = status.meters[0]
    assert meter.meter_id == 9
    assert meter.floor_kw == pytest.approx(2.0)
    assert meter.grid_power_kw is not None
    assert meter.phase_power_kw is not None
    assert not status.failsafe
    kinds = {d.kind for d in status.devices}
    assert kinds == {"storage", "pv", "charger"}
    storage = next(d for d in status.devices if d.kind == "storage")
    assert storage.setpoint_kw == pytest.approx(-100.0)  # absorbing at its rating
    assert storage.soc_pct is not None
    assert isinstance(rig.engine.dynamic_demand_kw(9), int)


@pytest.mark.unit
async def test_strategy_change_takes_effect_on_next_cycle() -> None:
    """A strategy disabled stops acting on the next cycle: PV back to rated, battery to 0."""
    rig = Rig()
    rig.engine.set_strategies(on9(*BACKFLOW))
    await rig.cycles(10)
    assert rig.plant.setpoints.pv_limit_kw[0] < 600.0  # curtailing
    rig.engine.set_strategies([])
    assert rig.plant.setpoints.pv_limit_kw[0] < 600.0  # not before the next cycle
    await rig.cycles(1)
    assert rig.plant.setpoints.pv_limit_kw == (600.0,)
    assert rig.plant.setpoints.storage_kw == (0.0,)


@pytest.mark.unit
async def test_silent_meter_failsafe_within_timeout_then_resumes() -> None:
    """D21: meter silent -> fail-safe within meter_timeout (event); readings back -> resume."""
    rig = Rig()
    rig.engine.set_strategies(on9(*BACKFLOW))
    await rig.cycles(10)
    silent_at = rig.clock.monotonic_s()
    rig.plant.meter.silent = True
    while not rig.engine.status().failsafe:
        await rig.cycles(1)
        assert rig.clock.monotonic_s() - silent_at <= rig.site.control.meter_timeout_s + 1.0
    assert rig.kinds() == ["failsafe_on"]
    assert rig.plant.setpoints.pv_limit_kw == (0.0,)  # PV to its fail-safe limit (0 %)
    assert rig.plant.setpoints.storage_kw[0] <= 0.0  # storage does not discharge
    await rig.cycles(5)
    assert rig.engine.status().meters[0].grid_power_kw is None
    rig.plant.meter.silent = False
    await rig.cycles(1)
    assert rig.kinds() == ["failsafe_on", "failsafe_off"]
    assert 0.0 < rig.plant.setpoints.pv_limit_kw[0] <= 100.0  # ramping up, not jumping
    await rig.cycles(30)
    assert rig.plant.state.grid_power_kw >= 0.0
    assert rig.plant.state.pv_power_kw[0] > 300.0  # normal control again


@pytest.mark.unit
async def test_offline_device_is_marked_and_others_carry_on() -> None:
    """D21: a dead battery is offline (event), PV alone keeps the backflow out."""
    rig = Rig()
    rig.engine.set_strategies(on9(*BACKFLOW))
    rig.plant.storage[0].online = False
    await rig.cycles(10)
    assert "device_offline" in rig.kinds()
    storage = next(d for d in rig.engine.status().devices if d.kind == "storage")
    assert not storage.online
    assert rig.plant.state.grid_power_kw >= 0.0
    rig.plant.storage[0].online = True
    await rig.cycles(1)
    assert rig.kinds()[-1] == "device_online"


@pytest.mark.slow
async def test_dynamic_demand_persists_across_restart() -> None:
    """D18: the month's maximum survives a restart through the StateStore."""
    cloudy = PlantInputs((100.0, 100.0, 100.0), (0.0,), (0.0,))
    store = MemoryStateStore()
    rig = Rig(cloudy, store=store, soc_pct=95.0)
    rig.engine.set_strategies(on9(strategy(2, over_demand=(1000,) * 12)))
    await rig.cycles(17 * 60)
    assert rig.engine.dynamic_demand_kw(9) == 300
    again = Rig(cloudy, store=store)
    again.clock.advance(17 * 60 + 5)
    await again.cycles(1)
    assert again.engine.dynamic_demand_kw(9) == 300


@pytest.mark.unit
async def test_run_loop_on_fake_clock_at_100ms() -> None:
    """run() cycles every period_s on the injected clock; 100 ms works."""
    rig = Rig(period_s=0.1)
    rig.engine.set_strategies(on9(*BACKFLOW))
    stop = asyncio.Event()

    async def stopper() -> None:
        await wait_for(
            lambda: rig.clock.monotonic_s() >= 5.0, 10, "5 s on the fake clock", poll_s=0
        )
        stop.set()

    async with asyncio.TaskGroup() as tg:
        tg.create_task(rig.engine.run(stop), name="control")
        tg.create_task(stopper(), name="stopper")
    assert 49 <= rig.engine.status().cycle <= 51
    assert rig.plant.state.grid_power_kw >= 0.0


@pytest.mark.unit
def test_site_file_efficiency_reaches_the_planner_ratings() -> None:
    """Each [[storage]] unit's round-trip efficiency is what the planner budgets with."""
    site = site_config()
    lossy = site.storage[0].model_copy(update={"efficiency": 0.81})
    ratings = meter_ratings(site.model_copy(update={"storage": [lossy]}), 9)
    assert [r.efficiency for r in ratings.storage] == [0.81]
    assert meter_ratings(site, 9).storage[0].efficiency == pytest.approx(0.92)  # the default


@pytest.mark.unit
async def test_every_meter_persisted_in_one_call_per_demand_step() -> None:
    """With several meters, the per-step state goes to the store in ONE save (one fsync)."""

    class Counting(MemoryStateStore):
        def __init__(self) -> None:
            super().__init__()
            self.calls: list[int] = []

        async def save_many(self, values: Mapping[str, dict[str, Any]]) -> None:
            self.calls.append(len(values))
            await super().save_many(values)

    store = Counting()
    site = site_config().model_copy(
        update={"meters": [MeterConfig(id=9), *(MeterConfig(id=100 + n) for n in range(20))]}
    )
    clock = FakeClock(START)
    bare = PlantInputs((30.0, 30.0, 30.0), (), ())  # a meter with nothing behind it
    worlds = {m.id: SUNNY if m.id == 9 else bare for m in site.meters}
    fakes = FakeSite(site, clock, worlds)
    engine = ControlEngine(site, fakes.devices(), clock, store, lambda _e: None)
    for _ in range(130):  # a little over two demand steps of 60 s
        await engine.run_cycle()
        clock.advance(1.0)
    assert set(store.calls) == {21}  # all meters together, never one meter per transaction
    assert 3 <= len(store.calls) <= 4  # at start, then once per demand step (60 s)
    assert set(store.values) == {f"control/meter/{m.id}" for m in site.meters}


@pytest.mark.unit
async def test_goals_are_computed_anew_only_for_a_meter_whose_strategies_changed() -> None:
    """Setting the same strategies again keeps the meter's goals as they were (the agent sets
    them after every change anywhere on the site); a change there makes them anew."""
    rig = Rig()
    rig.engine.set_strategies(on9(*BACKFLOW))
    await rig.cycles(1)
    before = rig.engine._goals[9]
    rig.engine.set_strategies(on9(*BACKFLOW))
    await rig.cycles(1)
    assert rig.engine._goals[9] is before
    rig.engine.set_strategies([])
    await rig.cycles(1)
    assert rig.engine._goals[9] == goals_for_meter([], 9)
