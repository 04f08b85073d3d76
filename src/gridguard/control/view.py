"""The frozen inputs and outputs of one decision for one gateway meter.

A :class:`MeterView` is what a real EMS sees at one instant: the meter reading and the readings
of the devices behind that meter (in site-configuration order), plus their static ratings.
A :class:`Command` is what the cycle writes: one value per device, ``None`` = do not write.
"""

from __future__ import annotations

from dataclasses import dataclass

from gridguard.devices.protocols import ChargerReading, MeterReading, PvReading, StorageReading


@dataclass(frozen=True, slots=True)
class StorageRating:
    rated_kw: float
    capacity_kwh: float
    soc_min_pct: float
    soc_max_pct: float
    efficiency: float = 0.92  # round-trip (site file: [[storage]] efficiency)


@dataclass(frozen=True, slots=True)
class ChargerRating:
    rated_kw: float
    min_kw: float
    priority: int  # higher = throttled later


@dataclass(frozen=True, slots=True)
class MeterRatings:
    """Static device data of one meter, in the same order as the readings."""

    storage: tuple[StorageRating, ...]
    chargers: tuple[ChargerRating, ...]


@dataclass(frozen=True, slots=True)
class MeterView:
    meter: MeterReading
    storage: tuple[StorageReading, ...]
    pv: tuple[PvReading, ...]
    chargers: tuple[ChargerReading, ...]


@dataclass(frozen=True, slots=True)
class Command:
    """Setpoints in kW: storage + discharge; PV and pile limits >= 0. None: leave alone."""

    storage_kw: tuple[float | None, ...]
    pv_limit_kw: tuple[float | None, ...]
    charger_limit_kw: tuple[float | None, ...]


def hold_command(view: MeterView) -> Command:
    """Write nothing: every device keeps the setpoint it has."""
    return Command(
        storage_kw=(None,) * len(view.storage),
        pv_limit_kw=(None,) * len(view.pv),
        charger_limit_kw=(None,) * len(view.chargers),
    )
