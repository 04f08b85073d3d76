"""Build the Modbus drivers of a whole site from its configuration, and close them again.

Every register map is loaded and checked before any connection is made: a wrong map refuses
the start with one :class:`MapError` listing every problem (file, key, rule). Devices that share
an endpoint (an RS-485 line, a TCP gateway) share one connection. Each read is bounded by
``READ_BUDGET_SHARE`` of the control period, so reading all devices in parallel fits the cycle
even when some of them do not answer.
"""

from __future__ import annotations

from pathlib import Path

from gridguard.clock import MonotonicClock, SystemClock
from gridguard.devices.modbus.drivers import ModbusCharger, ModbusPv, ModbusStorage
from gridguard.devices.modbus.link import Channel, Connection, endpoint_key
from gridguard.devices.modbus.mapped import MappedDevice
from gridguard.devices.modbus.meter import ModbusMeter
from gridguard.devices.modbus.regmap import (
    MapError,
    MapKind,
    RegisterMap,
    WordOrder,
    load_map,
)
from gridguard.devices.protocols import SiteDevices
from gridguard.site.config import ModbusLink, SiteConfig
from gridguard.vocab import RunningStatus

READ_BUDGET_SHARE = 0.8
"""Share of the control period one device's read (or write) may take."""


def _load_maps(site: SiteConfig, maps_dir: Path | None) -> dict[tuple[str, int], RegisterMap]:
    wanted: list[tuple[str, int, str, MapKind, str]] = [
        ("meters", m.id, m.type, "meter", f"meters[{i}].type") for i, m in enumerate(site.meters)
    ]
    kinds: tuple[tuple[str, MapKind], ...] = (
        ("storage", "storage"),
        ("pv", "pv"),
        ("chargers", "charger"),
    )
    for section, kind in kinds:
        for index, dev in enumerate(getattr(site, section)):
            wanted.append((section, dev.id, dev.model, kind, f"{section}[{index}].model"))
    maps: dict[tuple[str, int], RegisterMap] = {}
    errors: list[str] = []
    for section, dev_id, model, kind, where in wanted:
        try:
            regmap = load_map(model, maps_dir)
        except MapError as exc:
            errors.append(f"{where} = {model!r}: {exc}")
            continue
        if regmap.kind != kind:
            errors.append(f"{where} = {model!r}: map is for a {regmap.kind}, not a {kind}")
        maps[section, dev_id] = regmap
    if errors:
        raise MapError("\n".join(errors))
    return maps


class _Links:
    """One Connection per endpoint, shared by the devices behind it."""

    def __init__(self, clock: MonotonicClock) -> None:
        self.clock = clock
        self.connections: dict[str, Connection] = {}

    def channel(self, link: ModbusLink) -> Channel:
        key = endpoint_key(link)
        if key not in self.connections:
            self.connections[key] = Connection(link, clock=self.clock)
        return Channel(self.connections[key], link)


def build_site_devices(
    site: SiteConfig, maps_dir: Path | None = None, *, clock: MonotonicClock | None = None
) -> SiteDevices:
    """Modbus drivers for every meter and device in ``site``; raises MapError before any I/O.

    Maps come from ``maps_dir``, else the site's ``site.maps_dir``, then the shipped ones."""
    maps = _load_maps(site, maps_dir or site.site.maps_dir)
    links = _Links(clock or SystemClock())
    budget_s = site.control.period_s * READ_BUDGET_SHARE

    def mapped(
        section: str, dev_id: int, link: ModbusLink, word_order: WordOrder | None = None
    ) -> MappedDevice:
        return MappedDevice(
            maps[section, dev_id],
            links.channel(link),
            name=f"{section}[id={dev_id}]",
            word_order=word_order,
            read_budget_s=budget_s,
        )

    return SiteDevices(
        meters={
            m.id: ModbusMeter(m, mapped("meters", m.id, m.modbus, word_order=m.word_order))
            for m in site.meters
        },
        storage={s.id: ModbusStorage(s, mapped("storage", s.id, s.modbus)) for s in site.storage},
        pv={p.id: ModbusPv(p, mapped("pv", p.id, p.modbus)) for p in site.pv},
        chargers={
            c.id: ModbusCharger(c, mapped("chargers", c.id, c.modbus)) for c in site.chargers
        },
    )


def _all(devices: SiteDevices) -> list[object]:
    return [
        *devices.meters.values(),
        *devices.storage.values(),
        *devices.pv.values(),
        *devices.chargers.values(),
    ]


def close_site_devices(devices: SiteDevices) -> None:
    """Close every client (safe to call twice; devices without ``close`` are skipped)."""
    for device in _all(devices):
        close = getattr(device, "close", None)
        if callable(close):
            close()


def device_online(device: object) -> bool:
    """Whether a driver's last request succeeded; devices without ``online`` count as online."""
    return bool(getattr(device, "online", True))


def running_status(device: object) -> RunningStatus:
    """``running_status`` for MQTT reports: 1 online, 2 offline (D21)."""
    return RunningStatus.ONLINE if device_online(device) else RunningStatus.OFFLINE
