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
from collections.abc import Callable, Mapping

from gridguard.clock import MonotonicClock
from gridguard.devices.protocols import (
    ChargerControl,
    ChargerReading,
    GridMeter,
    MeterReading,
    PvControl,
    PvReading,
    SiteDevices,
    StorageControl,
    StorageReading,
)
from gridguard.plant.model import (
    PlantInputs,
    PlantParams,
    PlantSetpoints,
    PlantState,
    StorageParams,
    bms_limits_kw,
)
from gridguard.plant.stepper import PlantStepper, plant_params
from gridguard.site.config import SiteConfig
from gridguard.vocab import DeviceKind

InputsSource = PlantInputs | Callable[[float], PlantInputs]


class DeviceOfflineError(ConnectionError):
    """The fake device is offline and did not take the write."""


def storage_reading(p: StorageParams, power_kw: float, soc_pct: float) -> StorageReading:
    """What a PCS + BMS reports: power, SOC, and limits that close at the SOC window."""
    chg, dis = bms_limits_kw(p, soc_pct)
    return StorageReading(
        power_kw=power_kw, soc_pct=soc_pct, max_charge_kw=chg, max_discharge_kw=dis
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
        self.clock = clock
        self.inputs = inputs
        self.max_step_s = max_step_s
        socs = soc_pct if soc_pct is not None else tuple(50.0 for _ in params.storage)
        self.plant = PlantStepper(params, socs, rng=rng)
        self._t = clock.monotonic_s()
        self.meter = FakeMeter(self)
        self.storage = [FakeStorage(self, i) for i in range(len(params.storage))]
        self.pv = [FakePv(self, i) for i in range(len(params.pv_rated_kw))]
        self.chargers = [FakeCharger(self, i) for i in range(len(params.chargers))]
        self.plant.step(self.inputs_at(self._t), 1e-9)

    @property
    def params(self) -> PlantParams:
        return self.plant.params

    @property
    def state(self) -> PlantState:
        return self.plant.state

    @property
    def setpoints(self) -> PlantSetpoints:
        return self.plant.setpoints

    def inputs_at(self, t_s: float) -> PlantInputs:
        return self.inputs(t_s) if callable(self.inputs) else self.inputs

    def sync(self) -> PlantState:
        """Step the plant up to the clock's present time; return the state."""
        now = self.clock.monotonic_s()
        while now - self._t > 1e-9:
            dt = min(self.max_step_s, now - self._t)
            self._t += dt
            self.plant.step(self.inputs_at(self._t), dt)
        return self.plant.state

    def write(self, kind: DeviceKind, index: int, kw: float) -> None:
        """Step to now, then change one setpoint (storage power or a PV / pile limit, kW)."""
        self.sync()
        self.plant.write(kind, index, kw)


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
        del state
        phases = self.plant.plant.measure()
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

    async def read_setpoint_kw(self) -> float | None:
        return self.plant.setpoints.storage_kw[self.index] if self.online else None

    async def write_power_kw(self, setpoint_kw: float) -> None:
        self._check_online()
        self.plant.write("storage", self.index, setpoint_kw)


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
        self.plant.write("pv", self.index, limit_kw)

    async def read_setpoint_kw(self) -> float | None:
        return self.plant.setpoints.pv_limit_kw[self.index] if self.online else None


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
        self.plant.write("charger", self.index, limit_kw)

    async def read_setpoint_kw(self) -> float | None:
        return self.plant.setpoints.charger_limit_kw[self.index] if self.online else None


class FakeSite:
    """One FakePlant per gateway meter of a site configuration."""

    def __init__(
        self,
        site: SiteConfig,
        clock: MonotonicClock,
        inputs: Mapping[int, InputsSource],
        *,
        soc_pct: float = 50.0,
        actuator_lag_s: float = 1.0,
        meter_noise_kw: float = 0.0,
        seed: int = 1,
    ) -> None:
        self.plants: dict[int, FakePlant] = {
            branch.meter_id: FakePlant(
                plant_params(branch, actuator_lag_s=actuator_lag_s, meter_noise_kw=meter_noise_kw),
                clock,
                inputs[branch.meter_id],
                soc_pct=tuple(soc_pct for _ in branch.storage),
                rng=random.Random(seed + branch.meter_id),  # noqa: S311 - simulated noise
            )
            for branch in site.topology
        }
        self._topology = site.topology

    def devices(self) -> SiteDevices:
        """The fakes keyed by the ids of the site configuration."""
        meters: dict[int, GridMeter] = {}
        storage: dict[int, StorageControl] = {}
        pv: dict[int, PvControl] = {}
        chargers: dict[int, ChargerControl] = {}
        for branch in self._topology:
            plant = self.plants[branch.meter_id]
            meters[branch.meter_id] = plant.meter
            storage.update(zip((d.id for d in branch.storage), plant.storage, strict=True))
            pv.update(zip((d.id for d in branch.pv), plant.pv, strict=True))
            chargers.update(zip((d.id for d in branch.chargers), plant.chargers, strict=True))
        return SiteDevices(meters=meters, storage=storage, pv=pv, chargers=chargers)
