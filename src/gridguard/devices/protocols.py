"""Device capabilities as small Protocols, and the frozen readings they return.

Sign conventions (as everywhere, see ``gridguard.vocab``):

* grid power: positive = import from the grid, negative = export;
* storage power: positive = discharge, negative = charge;
* PV and charging-pile power: always >= 0 (production / consumption).

Every reading carries ``online``: a driver that cannot reach its device returns a reading with
``online=False`` (and its last known values) instead of raising, so one dead device never stops
the control cycle for the others (D21).
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from gridguard.vocab import DeviceKind


@dataclass(frozen=True, slots=True)
class MeterReading:
    """One sample of the gateway meter, already scaled (PT x CT) and direction-corrected."""

    grid_power_kw: float
    """Total active power at the grid connection in kW, + import / - export."""
    phase_power_kw: tuple[float, float, float] | None
    """Active power per phase (A, B, C) in kW, + import; None when the meter has no phases."""
    valid: bool = True
    """False when the meter did not answer or answered garbage."""
    demand_kw: float | None = None
    """The meter's own current forward demand in kW, if it reports one."""


@dataclass(frozen=True, slots=True)
class StorageReading:
    """State of one storage PCS + BMS."""

    power_kw: float
    """Present AC power in kW, + discharge / - charge."""
    soc_pct: float
    """State of charge in percent, 0..100."""
    max_charge_kw: float
    """How much it may charge right now in kW (>= 0), from rating and BMS limits."""
    max_discharge_kw: float
    """How much it may discharge right now in kW (>= 0), from rating and BMS limits."""
    online: bool = True


@dataclass(frozen=True, slots=True)
class PvReading:
    """State of one PV inverter."""

    power_kw: float
    """Present AC output in kW (>= 0)."""
    limit_kw: float
    """Active-power limit in force in kW (>= 0); equals rated power when not curtailed."""
    rated_kw: float
    online: bool = True


@dataclass(frozen=True, slots=True)
class ChargerReading:
    """State of one AC/DC charging pile."""

    power_kw: float
    """Present power drawn by the vehicle in kW (>= 0)."""
    limit_kw: float
    """Power limit in force in kW (>= 0)."""
    connected: bool
    """A vehicle is plugged in."""
    online: bool = True


DeviceReading = StorageReading | PvReading | ChargerReading
"""What any controllable device reports."""


@runtime_checkable
class GridMeter(Protocol):
    """A gateway meter (关口表) at the grid connection."""

    async def read(self) -> MeterReading:
        """Read total and per-phase active power in kW (+ import)."""
        ...


@runtime_checkable
class StorageControl(Protocol):
    """A storage system that follows an AC power setpoint."""

    async def read(self) -> StorageReading:
        """Read present power (kW, + discharge), SOC (%) and the power limits (kW)."""
        ...

    async def write_power_kw(self, setpoint_kw: float) -> None:
        """Command AC power in kW, + discharge / - charge."""
        ...


@runtime_checkable
class PvControl(Protocol):
    """A PV inverter whose active power can be limited."""

    async def read(self) -> PvReading:
        """Read present output and limit in kW."""
        ...

    async def write_limit_kw(self, limit_kw: float) -> None:
        """Limit active power output to ``limit_kw`` (0..rated) in kW."""
        ...


@runtime_checkable
class ChargerControl(Protocol):
    """A charging pile whose power can be limited."""

    async def read(self) -> ChargerReading:
        """Read present power and limit in kW and whether a vehicle is connected."""
        ...

    async def write_limit_kw(self, limit_kw: float) -> None:
        """Limit the charging power to ``limit_kw`` in kW (0 pauses charging)."""
        ...


@runtime_checkable
class SetpointReadback(Protocol):
    """A device whose setpoint register can be read back (another master may change it)."""

    async def read_setpoint_kw(self) -> float | None:
        """The setpoint the device holds now, in kW (storage + discharge; a limit >= 0);
        None when it cannot be read."""
        ...


@dataclass(frozen=True, slots=True)
class SiteDevices:
    """Every field device of a site, keyed by the id it has in the site configuration."""

    meters: dict[int, GridMeter]
    storage: dict[int, StorageControl]
    pv: dict[int, PvControl]
    chargers: dict[int, ChargerControl]

    def of(self, kind: DeviceKind) -> Mapping[int, StorageControl | PvControl | ChargerControl]:
        """The devices of one class, by configured id."""
        if kind == "storage":
            return self.storage
        if kind == "pv":
            return self.pv
        return self.chargers

    def keys(self) -> list[tuple[DeviceKind, int]]:
        """``(kind, id)`` of every controllable device: storage, then PV, then chargers."""
        return [
            *(("storage", i) for i in self.storage),
            *(("pv", i) for i in self.pv),
            *(("charger", i) for i in self.chargers),
        ]

    def read(self, key: tuple[DeviceKind, int]) -> Awaitable[DeviceReading]:
        """Read one controllable device."""
        kind, device_id = key
        reading: Awaitable[DeviceReading] = self.of(kind)[device_id].read()
        return reading

    def write(self, key: tuple[DeviceKind, int], value: float) -> Awaitable[None]:
        """Write one setpoint: storage power (kW, + discharge) or a PV/pile limit (kW)."""
        kind, device_id = key
        if kind == "storage":
            return self.storage[device_id].write_power_kw(value)
        if kind == "pv":
            return self.pv[device_id].write_limit_kw(value)
        return self.chargers[device_id].write_limit_kw(value)
