"""Which devices sit behind which gateway meter: computed once from the site configuration.

Every part of GridGuard that asks "the storage, PV and chargers behind meter m" (the control
engine, the status snapshot, list/post's ``devices`` (D7), the fakes, the simulator, the lab)
asks :class:`SiteTopology` instead of filtering the configuration lists by hand. Devices keep
their configuration order within a branch; that order is the order of readings, ratings and
setpoints everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

from gridguard.vocab import DEVICE_KINDS, DeviceClass, DeviceKind

if TYPE_CHECKING:
    from collections.abc import Iterator

    from gridguard.site.config import (
        ChargerConfig,
        MeterConfig,
        PvConfig,
        SiteConfig,
        StorageConfig,
    )


@dataclass(frozen=True, slots=True)
class DeviceRef:
    """One controllable device: its class, its configured id, the meter it sits behind."""

    kind: DeviceKind
    id: int
    meter_id: int

    @property
    def key(self) -> tuple[DeviceKind, int]:
        """``(kind, id)``: unique within a site."""
        return (self.kind, self.id)


@dataclass(frozen=True, slots=True)
class MeterBranch:
    """A meter and the devices configured behind it, each class in configuration order."""

    meter: MeterConfig
    storage: tuple[StorageConfig, ...]
    pv: tuple[PvConfig, ...]
    chargers: tuple[ChargerConfig, ...]

    @property
    def meter_id(self) -> int:
        return self.meter.id

    def of(self, kind: DeviceKind) -> tuple[StorageConfig | PvConfig | ChargerConfig, ...]:
        """The configured devices of one class behind this meter."""
        if kind == "storage":
            return self.storage
        if kind == "pv":
            return self.pv
        return self.chargers

    def of_class(
        self, device_class: DeviceClass | int
    ) -> tuple[StorageConfig | PvConfig | ChargerConfig, ...]:
        """The same for a wire ``device_type`` (D7); empty for an unknown one."""
        try:
            return self.of(DeviceClass(device_class).kind)
        except ValueError:
            return ()

    def refs(self, kind: DeviceKind | None = None) -> tuple[DeviceRef, ...]:
        """References to this branch's devices (one class, or all: storage, PV, chargers)."""
        kinds: tuple[DeviceKind, ...] = (kind,) if kind else DEVICE_KINDS
        return tuple(DeviceRef(k, d.id, self.meter.id) for k in kinds for d in self.of(k))


@dataclass(frozen=True, slots=True)
class SiteTopology:
    """Every meter of a site with its branch, in configuration order."""

    branches: tuple[MeterBranch, ...]
    by_meter: Mapping[int, MeterBranch]

    @classmethod
    def from_config(cls, site: SiteConfig) -> SiteTopology:
        branches = tuple(
            MeterBranch(
                meter=m,
                storage=tuple(d for d in site.storage if d.meter_id == m.id),
                pv=tuple(d for d in site.pv if d.meter_id == m.id),
                chargers=tuple(d for d in site.chargers if d.meter_id == m.id),
            )
            for m in site.meters
        )
        return cls(branches, MappingProxyType({b.meter.id: b for b in branches}))

    def __iter__(self) -> Iterator[MeterBranch]:
        return iter(self.branches)

    def branch(self, meter_id: int) -> MeterBranch | None:
        """The branch of ``meter_id``, or None when no such meter is configured."""
        return self.by_meter.get(meter_id)

    @property
    def gateways(self) -> tuple[MeterBranch, ...]:
        """Branches of gateway meters (purpose 1), the ones the site's load is split over."""
        return tuple(b for b in self.branches if b.meter.purpose == 1)

    def refs(self, kind: DeviceKind | None = None) -> tuple[DeviceRef, ...]:
        """Every device reference of the site, branch by branch."""
        return tuple(r for b in self.branches for r in b.refs(kind))
