"""``gridguard devices probe``: read every configured meter and device once, write nothing.

The first step of commissioning: before the agent controls anything, each row shows where a
device is reached, what it answered (in engineering units, after PT x CT and direction for a
meter) and, when it did not answer, why in words an integrator can act on.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

from gridguard.devices.factory import build_site_devices, close_site_devices
from gridguard.devices.modbus.drivers import ModbusCharger, ModbusPv, ModbusStorage
from gridguard.devices.modbus.meter import ModbusMeter
from gridguard.devices.protocols import (
    ChargerReading,
    MeterReading,
    PvReading,
    SiteDevices,
    StorageReading,
)
from gridguard.site.config import MeterConfig, ModbusLink, SiteConfig

Reading = MeterReading | StorageReading | PvReading | ChargerReading
Driver = ModbusMeter | ModbusStorage | ModbusPv | ModbusCharger

MODBUS_EXCEPTIONS = {
    1: "illegal function: the device does not serve this register table (check `function`)",
    2: "illegal data address: a register of the map does not exist on it (wrong map/model?)",
    3: "illegal data value: the device refused the register count",
    4: "device failure: the device reports an internal error",
    6: "device busy: try again",
    10: "gateway path unavailable: the gateway has no route to this slave id",
    11: "gateway target failed to respond: nothing answers this slave id behind the gateway",
}


@dataclass(frozen=True, slots=True)
class ProbeRow:
    """One meter or device as probed."""

    kind: str
    device_id: int
    name: str
    address: str
    model: str
    reading: str
    online: bool
    error: str


def describe_link(link: ModbusLink) -> str:
    """Where a device is reached: ``tcp HOST:PORT unit 1``, ``rtu /dev/ttyS1 9600 8E1 unit 3``."""
    if link.transport == "rtu":
        frame = f"{link.baud_rate} {link.data_bits}{link.parity}{link.stop_bits}"
        return f"rtu {link.serial_port} {frame} unit {link.slave_id}"
    return f"tcp {link.host}:{link.port} unit {link.slave_id}"


def error_in_words(error: str, link: ModbusLink) -> str:
    """A driver's last error said as what to check."""
    if not error:
        return ""
    if "cannot connect" in error or "reconnect in" in error:
        where = link.serial_port if link.transport == "rtu" else f"{link.host}:{link.port}"
        return f"no connection to {where}: wrong address or port, device off, or cabling"
    code = re.search(r"exception_code=(\d+)", error)
    if code is not None:
        number = int(code.group(1))
        return f"exception {number:02d}, " + MODBUS_EXCEPTIONS.get(number, "refused the request")
    if "no answer" in error or "no full answer" in error:
        return (
            f"connected, but no answer within {link.timeout_s} s: wrong slave id "
            f"({link.slave_id}), baud rate or parity, or A/B swapped on RS-485"
        )
    return error


def _kw(value: float) -> str:
    return f"{value:+.1f} kW"


def describe_reading(reading: Reading) -> str:
    """What a reading says, with units and signs."""
    if isinstance(reading, MeterReading):
        text = f"grid {_kw(reading.grid_power_kw)} (+ import)"
        if reading.phase_power_kw is not None:
            text += "; A/B/C " + " / ".join(f"{kw:+.1f}" for kw in reading.phase_power_kw) + " kW"
        if reading.demand_kw is not None:
            text += f"; demand {reading.demand_kw:.1f} kW"
        return text
    if isinstance(reading, StorageReading):
        return (
            f"{_kw(reading.power_kw)} (+ discharge); SOC {reading.soc_pct:.1f} %; may charge "
            f"{reading.max_charge_kw:.1f} kW, discharge {reading.max_discharge_kw:.1f} kW"
        )
    if isinstance(reading, PvReading):
        return f"{reading.power_kw:.1f} kW; limit {reading.limit_kw:.1f} of {reading.rated_kw:g} kW"
    plugged = "vehicle plugged" if reading.connected else "no vehicle"
    return f"{reading.power_kw:.1f} kW; limit {reading.limit_kw:.1f} kW; {plugged}"


def _drivers(devices: SiteDevices) -> list[tuple[str, int, object]]:
    return [
        *(("meter", i, d) for i, d in devices.meters.items()),
        *(("storage", i, d) for i, d in devices.storage.items()),
        *(("pv", i, d) for i, d in devices.pv.items()),
        *(("charger", i, d) for i, d in devices.chargers.items()),
    ]


async def _ratios(meter: ModbusMeter) -> str:
    """The meter's own PT and CT registers beside the configured ones, where the map has them:
    they must agree, or every kW is off by their ratio."""
    device, config = meter.device, meter.config
    if not (device.has("pt") and device.has("ct")):
        return ""
    values = await device.read_points(("pt", "ct"))
    if values is None:
        return ""
    pt, ct = round(values["pt"]), round(values["ct"])
    mismatch = "" if (pt, ct) == (config.pt, config.ct) else " MISMATCH"
    return f"; meter's PT/CT {pt}/{ct}, configured {config.pt}/{config.ct}{mismatch}"


async def _probe_one(kind: str, device_id: int, driver: object) -> ProbeRow:
    if not isinstance(driver, Driver):
        raise TypeError(f"{kind} {device_id}: not a Modbus driver ({type(driver).__name__})")
    reading = await driver.read()
    config, channel = driver.config, driver.device.channel
    online = reading.valid if isinstance(reading, MeterReading) else reading.online
    model = config.type if isinstance(config, MeterConfig) else config.model
    text = describe_reading(reading) if online else "-"
    if online and isinstance(driver, ModbusMeter):
        text += await _ratios(driver)
    return ProbeRow(
        kind=kind,
        device_id=device_id,
        name=config.name,
        address=describe_link(config.modbus),
        model=model,
        reading=text,
        online=online,
        error="" if online else error_in_words(channel.last_error, config.modbus),
    )


async def probe(devices: SiteDevices) -> list[ProbeRow]:
    """Read each meter and device once, all at once (a dead one does not hold up the others)."""
    return list(await asyncio.gather(*(_probe_one(*entry) for entry in _drivers(devices))))


def probe_rows(rows: list[ProbeRow]) -> list[list[str]]:
    """The table: a header, then one row per device."""
    out = [["kind", "id", "name", "address", "map", "online", "read", "error"]]
    for r in rows:
        online = "yes" if r.online else "NO"
        out.append(
            [r.kind, str(r.device_id), r.name, r.address, r.model, online, r.reading, r.error]
        )
    return out


async def probe_site(site: SiteConfig) -> list[ProbeRow]:
    """The site's drivers built (MapError before any I/O), probed once, closed."""
    devices = build_site_devices(site)
    try:
        return await probe(devices)
    finally:
        close_site_devices(devices)
