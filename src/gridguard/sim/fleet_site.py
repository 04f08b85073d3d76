"""Synthetic sites for the fleet simulator: a few shapes, shared by every simulated EMS.

Each shape is a frozen :class:`SiteShape`: one or two gateway meters and the storage, PV and
charging piles behind each, as the wire objects list/post reports (``ele_meter``, ``devices``),
plus the ratings the toy plant needs. Ids are per EMS, so 10,000 devices share four shapes
(device ``n`` has shape ``n % 4``) and cost no memory of their own for their site.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from gridguard.protocol.models import (
    AnyDevice,
    EleDeviceType,
    EleMeter,
    EmsDevice,
    Pail,
    Photovoltaic,
)
from gridguard.strategy.rules import SiteView
from gridguard.vocab import DeviceClass, DeviceKind

TIME_ZONE = "Asia/Shanghai"


@dataclass(frozen=True, slots=True)
class Unit:
    """One controllable device behind a meter, with its rating."""

    kind: DeviceKind
    id: int
    rated_kw: float
    capacity_kwh: float = 0.0
    """Storage only."""


@dataclass(frozen=True, slots=True)
class MeterShape:
    id: int
    per_phase: bool
    base_load_kw: float
    units: tuple[Unit, ...]
    rated_kw: Mapping[DeviceKind, float] = field(init=False)
    """Total rating per device class behind this meter (0 where there is none)."""
    capacity_kwh: float = field(init=False)
    shares: tuple[float, ...] = field(init=False)
    """Each unit's share of its class's rating, in ``units`` order."""

    def __post_init__(self) -> None:
        kinds: tuple[DeviceKind, ...] = ("storage", "pv", "charger")
        rated = {k: sum(u.rated_kw for u in self.of(k)) for k in kinds}
        object.__setattr__(self, "rated_kw", MappingProxyType(rated))
        object.__setattr__(self, "capacity_kwh", sum(u.capacity_kwh for u in self.units))
        object.__setattr__(self, "shares", tuple(u.rated_kw / rated[u.kind] for u in self.units))

    def of(self, kind: DeviceKind) -> tuple[Unit, ...]:
        return tuple(u for u in self.units if u.kind == kind)


@dataclass(frozen=True, slots=True)
class SiteShape:
    """A synthetic site: meters, devices, and their wire objects, built once."""

    name: str
    meters: tuple[MeterShape, ...]
    time_zone: str = TIME_ZONE
    view: SiteView = field(init=False)
    ele_meters: Mapping[int, EleMeter] = field(init=False)
    wire_devices: Mapping[tuple[int, int], tuple[AnyDevice, ...]] = field(init=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "view", SiteView(MappingProxyType({m.id: m.per_phase for m in self.meters})))
        set_(self, "ele_meters", MappingProxyType({m.id: _ele_meter(self, m) for m in self.meters}))
        devices = {
            (m.id, cls.value): tuple(_wire_unit(self, u) for u in m.of(cls.kind))
            for m in self.meters
            for cls in DeviceClass
        }
        set_(self, "wire_devices", MappingProxyType(devices))

    def meter(self, meter_id: int) -> MeterShape | None:
        return next((m for m in self.meters if m.id == meter_id), None)


def _ele_meter(site: SiteShape, meter: MeterShape) -> EleMeter:
    return EleMeter(
        id=meter.id,
        proto_type=1,
        proto_id=2,
        slave_id=meter.id,
        host="192.168.1.10",
        port=502,
        uid=f"meter-{meter.id}",
        station_name=site.name,
        name=f"Gateway meter {meter.id}",
        ele_device_type_id=1,
        ele_device_type=EleDeviceType(id=1, name="Acrel-ADW300"),
        running_status=1,
        purpose=1,
        rate=1,
    )


def _wire_unit(site: SiteShape, unit: Unit) -> AnyDevice:
    common = {
        "id": unit.id,
        "proto_type": 1,
        "proto_id": 2,
        "slave_id": unit.id,
        "host": "192.168.1.20",
        "port": 502,
        "uid": f"{unit.kind}-{unit.id}",
        "name": f"{unit.kind} {unit.id}",
        "site_name": site.name,
        "running_status": 1,
    }
    if unit.kind == "storage":
        return EmsDevice.model_validate(common)
    if unit.kind == "pv":
        return Photovoltaic.model_validate({**common, "rated_power": unit.rated_kw})
    return Pail.model_validate({**common, "rated_power": unit.rated_kw, "min_power": 6.0})


SHAPES: tuple[SiteShape, ...] = (
    SiteShape(
        "Factory (storage, PV, piles)",
        (
            MeterShape(
                1,
                per_phase=True,
                base_load_kw=320.0,
                units=(
                    Unit("storage", 1, 200.0, 430.0),
                    Unit("pv", 1, 150.0),
                    Unit("charger", 1, 60.0),
                    Unit("charger", 2, 60.0),
                ),
            ),
        ),
    ),
    SiteShape(
        "Campus (two meters)",
        (
            MeterShape(
                1,
                per_phase=True,
                base_load_kw=480.0,
                units=(Unit("storage", 1, 250.0, 500.0), Unit("pv", 1, 200.0)),
            ),
            MeterShape(
                2,
                per_phase=False,
                base_load_kw=150.0,
                units=(Unit("charger", 1, 120.0), Unit("charger", 2, 120.0)),
            ),
        ),
    ),
    SiteShape(
        "Warehouse (PV only)",
        (MeterShape(9, per_phase=True, base_load_kw=90.0, units=(Unit("pv", 1, 120.0),)),),
    ),
    SiteShape(
        "Depot (storage, piles)",
        (
            MeterShape(
                9,
                per_phase=True,
                base_load_kw=200.0,
                units=(
                    Unit("storage", 1, 100.0, 215.0),
                    Unit("charger", 1, 60.0),
                    Unit("charger", 2, 60.0),
                    Unit("charger", 3, 60.0),
                ),
            ),
            MeterShape(
                10,
                per_phase=False,
                base_load_kw=60.0,
                units=(Unit("storage", 2, 50.0, 100.0),),
            ),
        ),
    ),
)
"""The shapes devices are given in turn."""


def shape_for(index: int) -> SiteShape:
    return SHAPES[index % len(SHAPES)]
