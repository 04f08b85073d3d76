"""The project's shared words: device classes, on/off switches, running status, signs.

Everything above this module says a device class, a switch or a status with these names, so
the wire codes (``device_type`` 2/3/4, status 1/2) appear in exactly one place.

Sign conventions, everywhere in GridGuard (names carry the unit, ``_kw``, ``_pct``, ``_s``):

* grid power: + import from the grid, - export (backflow);
* storage power: + discharge, - charge;
* PV and charging-pile power: >= 0 (PV produces, a pile draws);
* a meter mounted reversed (``direction = -1``) is flipped when read, never later.

Rulings: none owned; the device classes of D7 and the switches of D14 are named here.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Literal

DeviceKind = Literal["storage", "pv", "charger"]
"""A controllable device class by name, as in status snapshots and the site topology."""

DEVICE_KINDS: tuple[DeviceKind, ...] = ("storage", "pv", "charger")
"""Every device class, in merit order (D19: storage first)."""

ConfigSection = Literal["storage", "pv", "chargers"]
"""The site file's table of each device class (``[[chargers]]`` is plural there)."""


class DeviceClass(IntEnum):
    """A strategy's ``device_type`` on the wire (D7): which device class it drives."""

    STORAGE = 2
    PV = 3
    CHARGER = 4

    @property
    def kind(self) -> DeviceKind:
        """The class's name in status and topology: ``storage``, ``pv``, ``charger``."""
        return _KINDS[self]

    @property
    def section(self) -> ConfigSection:
        """The site file's table for this class."""
        return _SECTIONS[self]

    @property
    def label(self) -> str:
        """How messages name it to a person: ``storage``, ``PV``, ``charging pile``."""
        return _LABELS[self]

    @classmethod
    def of_kind(cls, kind: DeviceKind) -> DeviceClass:
        """The class named ``kind``."""
        return _BY_KIND[kind]


_KINDS: dict[DeviceClass, DeviceKind] = {
    DeviceClass.STORAGE: "storage",
    DeviceClass.PV: "pv",
    DeviceClass.CHARGER: "charger",
}
_SECTIONS: dict[DeviceClass, ConfigSection] = {
    DeviceClass.STORAGE: "storage",
    DeviceClass.PV: "pv",
    DeviceClass.CHARGER: "chargers",
}
_LABELS = {
    DeviceClass.STORAGE: "storage",
    DeviceClass.PV: "PV",
    DeviceClass.CHARGER: "charging pile",
}
_BY_KIND = {kind: cls for cls, kind in _KINDS.items()}


class Switch(IntEnum):
    """A strategy's status fields (D14): 1 enabled, 2 disabled."""

    ENABLED = 1
    DISABLED = 2


class RunningStatus(IntEnum):
    """``running_status`` of a meter or device: 1 online, 2 offline (D21), 3 fault."""

    ONLINE = 1
    OFFLINE = 2
    FAULT = 3


ENABLED = Switch.ENABLED
DISABLED = Switch.DISABLED
