"""In-process fake devices implementing the Protocols, backed by the plant model.

A :class:`FakePlant` owns one gateway meter's :class:`~gridguard.plant.model.PlantState` and
steps it lazily up to the clock's present time whenever a device is read or written, so the
physics is exact whatever the control period, and no background task is needed. A
:class:`FakeSite` builds one FakePlant per meter of a :class:`SiteConfig` and hands out a
:class:`SiteDevices` keyed by the configured ids. The same fakes serve unit tests, the
simulator and the demo.

Faults: ``plant.meter.silent = True`` makes the meter answer with ``valid=False`` (D21);
``device.online = False`` makes a device read as offline and refuse writes.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol

from gridguard.devices.protocols import (
    ChargerReading,
    MeterReading,
    PvReading,
    SiteDevices,
    StorageReading,
)
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
from gridguard.site.config import SiteConfig

InputsSource = PlantInputs | Callable[[float], PlantInputs]


class MonotonicClock(Protocol):
    def monotonic_s(self) -> float: ...


class DeviceOfflineError(ConnectionError):
    """The fake device is offline and did not take the write."""


def storage_reading(p: StorageParams, power_kw: float, soc_pct: float) -> StorageReading:
    """What a PCS + BMS reports: power, SOC, and limits that close at the SOC window."""
    return StorageReading(
        power_kw=power_kw,
        soc_pct=soc_pct,
        max_charge_kw=0.0 if soc_pct >= p.soc_max_pct - 0.01 else p.power_kw,
        max_discharge_kw=0.0 if soc_pct <= p.soc_min_pct + 0.01 else p.power_kw,
    )


class FakePlant:
    """One meter's plant and its fake devices, stepped to ``clock.monotonic_s()``."""

    def __init__(
        self,
        params: PlantParams,
        clock: MonotonicClock,
        inputs: InputsSource,
        *,
        soc_pct: tuple[float, ...] | None = None,
        rng: random.Random | None = None,
        max_step_s: float = 0.1,
    ) -> None:
        self.params = params
        self.clock = clock
        self.inputs = inputs
        self.rng = rng
        self.max_step_s = max_step_s
        socs = soc_pct if soc_pct is not None else tuple(50.0 for _ in params.storage)
        self.state: PlantState = initial_state(params, socs)
        self.setpoints = PlantSetpoints(
            storage_kw=tuple(0.0 for _ in params.storage),
            pv_limit_kw=params.pv_rated_kw,
            charger_limit_kw=tuple(c.rated_kw for c in params.chargers),
        )
        self._t = clock.monotonic_s()
        self.meter = FakeMeter(self)
        self.storage = [FakeStorage(self, i) for i in range(len(params.storage))]
        self.pv = [FakePv(self, i) for i in range(len(params.pv_rated_kw))]
        self.chargers = [FakeCharger(self, i) for i in range(len(params.chargers))]
        self.state = step(params, self.state, self.inputs_at(self._t), self.setpoints, 1e-9)

    def inputs_at(self, t_s: float) -> PlantInputs:
        return self.inputs(t_s) if callable(self.inputs) else self.inputs

    def sync(self) -> PlantState:
        """Step the plant up to the clock's present time; return the state."""
        now = self.clock.monotonic_s()
        while now - self._t > 1e-9:
            dt = min(self.max_step_s, now - self._t)
            self._t += dt
            self.state = step(self.params, self.state, self.inputs_at(self._t), self.setpoints, dt)
        return self.state

    def write(self, kind: str, index: int, kw: float) -> None:
        """Change one setpoint: ``kind`` is a PlantSetpoints field name."""
        values = list(getattr(self.setpoints, kind))
        values[index] = kw
        self.setpoints = replace(self.setpoints, **{kind: tuple(values)})


class _FakeDevice:
    def __init__(self, plant: FakePlant, index: int) -> None:
        self.plant = plant
        self.index = index
        self.online = True

    def _check_online(self) -> None:
        if not self.online:
            raise DeviceOfflineError(f"{type(self).__name__}[{self.index}] is offline")


class FakeMeter:
    def __init__(self, plant: FakePlant) -> None:
        self.plant = plant
        self.silent = False

    async def read(self) -> MeterReading:
        state = self.plant.sync()
        phases = measure(self.plant.params, state, self.plant.rng)
        return MeterReading(grid_power_kw=sum(phases), phase_power_kw=phases, valid=not self.silent)


class FakeStorage(_FakeDevice):
    async def read(self) -> StorageReading:
        state = self.plant.sync()
        i = self.index
        r = storage_reading(
            self.plant.params.storage[i], state.storage_power_kw[i], state.storage_soc_pct[i]
        )
        if self.online:
            return r
        return StorageReading(r.power_kw, r.soc_pct, 0.0, 0.0, online=False)

    async def write_power_kw(self, setpoint_kw: float) -> None:
        self._check_online()
        self.plant.sync()
        self.plant.write("storage_kw", self.index, setpoint_kw)


class FakePv(_FakeDevice):
    async def read(self) -> PvReading:
        state = self.plant.sync()
        i = self.index
        return PvReading(
            power_kw=state.pv_power_kw[i],
            limit_kw=self.plant.setpoints.pv_limit_kw[i],
            rated_kw=self.plant.params.pv_rated_kw[i],
            online=self.online,
        )

    async def write_limit_kw(self, limit_kw: float) -> None:
        self._check_online()
        self.plant.sync()
        self.plant.write("pv_limit_kw", self.index, limit_kw)


class FakeCharger(_FakeDevice):
    async def read(self) -> ChargerReading:
        state = self.plant.sync()
        i = self.index
        demand = self.plant.inputs_at(self.plant.clock.monotonic_s()).charger_demand_kw[i]
        return ChargerReading(
            power_kw=state.charger_power_kw[i],
            limit_kw=self.plant.setpoints.charger_limit_kw[i],
            connected=demand > 0.0,
            online=self.online,
        )

    async def write_limit_kw(self, limit_kw: float) -> None:
        self._check_online()
        self.plant.sync()
        self.plant.write("charger_limit_kw", self.index, limit_kw)


class FakeSite:
    """One FakePlant per gateway meter of a site configuration."""

    def __init__(
        self,
        site: SiteConfig,
        clock: MonotonicClock,
        inputs: dict[int, InputsSource],
        *,
        soc_pct: float = 50.0,
        actuator_lag_s: float = 1.0,
        meter_noise_kw: float = 0.0,
        seed: int = 1,
    ) -> None:
        self.plants: dict[int, FakePlant] = {}
        for meter in site.meters:
            storage = [s for s in site.storage if s.meter_id == meter.id]
            params = PlantParams(
                storage=tuple(
                    StorageParams(
                        s.rated_kw, s.capacity_kwh, s.soc_min_pct, s.soc_max_pct, s.efficiency
                    )
                    for s in storage
                ),
                pv_rated_kw=tuple(p.rated_kw for p in site.pv if p.meter_id == meter.id),
                chargers=tuple(
                    ChargerParams(c.rated_kw, c.min_kw)
                    for c in site.chargers
                    if c.meter_id == meter.id
                ),
                actuator_lag_s=actuator_lag_s,
                meter_noise_kw=meter_noise_kw,
            )
            self.plants[meter.id] = FakePlant(
                params,
                clock,
                inputs[meter.id],
                soc_pct=tuple(soc_pct for _ in storage),
                rng=random.Random(seed + meter.id),  # noqa: S311 - simulated noise, not crypto
            )
        self._site = site

    def devices(self) -> SiteDevices:
        """The fakes keyed by the ids of the site configuration."""
        site, plants = self._site, self.plants
        return SiteDevices(
            meters={m: p.meter for m, p in plants.items()},
            storage=_by_id([(d.id, d.meter_id) for d in site.storage], plants, "storage"),
            pv=_by_id([(d.id, d.meter_id) for d in site.pv], plants, "pv"),
            chargers=_by_id([(d.id, d.meter_id) for d in site.chargers], plants, "chargers"),
        )


def _by_id(ids: list[tuple[int, int]], plants: dict[int, FakePlant], kind: str) -> dict[int, Any]:
    """Pair configured (device id, meter id) with each plant's fakes, in config order."""
    out: dict[int, Any] = {}
    for meter_id, plant in plants.items():
        mine = [device_id for device_id, m in ids if m == meter_id]
        out.update(dict(zip(mine, getattr(plant, kind), strict=True)))
    return out
