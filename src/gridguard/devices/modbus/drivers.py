"""Storage PCS, PV inverter and charging-pile drivers over Modbus, each a thin class on a map.

Sign conventions (protocols.py): storage + discharge / - charge; PV and charger power >= 0.
Every setpoint is clamped to the device's range before it is encoded (D20), so a negative
limit never reaches an unsigned register; the codec refuses one anyway as a last guard.
A read that fails returns the last known values with ``online=False`` (D21); a write that
fails is logged and counted, and shows as ``online`` False.
"""

from __future__ import annotations

from gridguard.devices.modbus.mapped import MappedDevice, clamp
from gridguard.devices.protocols import ChargerReading, PvReading, StorageReading
from gridguard.site.config import ChargerConfig, PvConfig, StorageConfig


def _present(device: MappedDevice, *names: str) -> tuple[str, ...]:
    return tuple(n for n in names if device.has(n))


class ModbusStorage:
    """StorageControl: power setpoint, SOC, charge/discharge limits and run state."""

    def __init__(self, config: StorageConfig, device: MappedDevice) -> None:
        self.config = config
        self.device = device
        self._names = (
            "power_kw",
            "soc_pct",
            *_present(device, "max_charge_kw", "max_discharge_kw", "run_state"),
        )
        self._running = frozenset(device.regmap.run_state_running)
        self._last = StorageReading(0.0, 0.0, 0.0, 0.0, online=False)

    @property
    def online(self) -> bool:
        return self.device.online

    async def read(self) -> StorageReading:
        values = await self.device.read_points(self._names)
        if values is None:
            last = self._last
            self._last = StorageReading(
                last.power_kw, last.soc_pct, last.max_charge_kw, last.max_discharge_kw, online=False
            )
            return self._last
        self._last = self.reading_from(values)
        return self._last

    def reading_from(self, values: dict[str, float]) -> StorageReading:
        """Pure: limits default to the rating, are capped by it, and are 0 when not running."""
        rated = self.config.rated_kw
        charge = clamp(values.get("max_charge_kw", rated), 0.0, rated)
        discharge = clamp(values.get("max_discharge_kw", rated), 0.0, rated)
        if "run_state" in values and int(values["run_state"]) not in self._running:
            charge = discharge = 0.0
        return StorageReading(
            power_kw=values["power_kw"],
            soc_pct=values["soc_pct"],
            max_charge_kw=charge,
            max_discharge_kw=discharge,
            online=True,
        )

    async def read_setpoint_kw(self) -> float | None:
        """The power setpoint the PCS holds (kW, + discharge), None when unreadable."""
        values = await self.device.read_points(("power_setpoint_kw",))
        return None if values is None else values["power_setpoint_kw"]

    async def write_power_kw(self, setpoint_kw: float) -> None:
        """Command AC power in kW (+ discharge), clamped to +/- the rated power."""
        rated = self.config.rated_kw
        await self.device.write_point("power_setpoint_kw", clamp(setpoint_kw, -rated, rated))

    def close(self) -> None:
        self.device.close()


class ModbusPv:
    """PvControl: present output and an active-power limit in kW or in % of rated."""

    def __init__(self, config: PvConfig, device: MappedDevice) -> None:
        self.config = config
        self.device = device
        self._limit_point = "power_limit_kw" if device.has("power_limit_kw") else "power_limit_pct"
        self._names = ("power_kw", self._limit_point)
        self._last = PvReading(0.0, config.rated_kw, config.rated_kw, online=False)

    @property
    def online(self) -> bool:
        return self.device.online

    async def read(self) -> PvReading:
        values = await self.device.read_points(self._names)
        if values is None:
            last = self._last
            self._last = PvReading(last.power_kw, last.limit_kw, last.rated_kw, online=False)
            return self._last
        self._last = self.reading_from(values)
        return self._last

    def reading_from(self, values: dict[str, float]) -> PvReading:
        """Pure: the limit in kW whichever way the inverter states it."""
        rated = self.config.rated_kw
        limit = values[self._limit_point]
        if self._limit_point == "power_limit_pct":
            limit = limit * rated / 100.0
        return PvReading(
            power_kw=max(values["power_kw"], 0.0),
            limit_kw=clamp(limit, 0.0, rated),
            rated_kw=rated,
            online=True,
        )

    async def read_setpoint_kw(self) -> float | None:
        """The active-power limit the inverter holds, in kW; None when unreadable."""
        values = await self.device.read_points((self._limit_point,))
        return None if values is None else self.reading_from({"power_kw": 0.0, **values}).limit_kw

    async def write_limit_kw(self, limit_kw: float) -> None:
        """Limit output to ``limit_kw``, clamped to 0..rated, in the map's unit."""
        rated = self.config.rated_kw
        limit = clamp(limit_kw, 0.0, rated)
        if self._limit_point == "power_limit_pct":
            await self.device.write_point("power_limit_pct", limit / rated * 100.0)
        else:
            await self.device.write_point("power_limit_kw", limit)

    def close(self) -> None:
        self.device.close()


class ModbusCharger:
    """ChargerControl: present power, vehicle connected, and a power limit in kW."""

    def __init__(self, config: ChargerConfig, device: MappedDevice) -> None:
        self.config = config
        self.device = device
        self._names = ("power_kw", "power_limit_kw", *_present(device, "connected"))
        self._last = ChargerReading(0.0, config.rated_kw, connected=False, online=False)

    @property
    def online(self) -> bool:
        return self.device.online

    async def read(self) -> ChargerReading:
        values = await self.device.read_points(self._names)
        if values is None:
            last = self._last
            self._last = ChargerReading(
                last.power_kw, last.limit_kw, connected=last.connected, online=False
            )
            return self._last
        self._last = self.reading_from(values)
        return self._last

    def reading_from(self, values: dict[str, float]) -> ChargerReading:
        """Pure: without a 'connected' point, a pile drawing power has a vehicle."""
        power = max(values["power_kw"], 0.0)
        connected = bool(values["connected"]) if "connected" in values else power > 0.0
        return ChargerReading(
            power_kw=power,
            limit_kw=clamp(values["power_limit_kw"], 0.0, self.config.rated_kw),
            connected=connected,
            online=True,
        )

    async def read_setpoint_kw(self) -> float | None:
        """The power limit the pile holds, in kW; None when unreadable."""
        values = await self.device.read_points(("power_limit_kw",))
        if values is None:
            return None
        return clamp(values["power_limit_kw"], 0.0, self.config.rated_kw)

    async def write_limit_kw(self, limit_kw: float) -> None:
        """Limit charging to ``limit_kw``, clamped to 0..rated (0 pauses)."""
        await self.device.write_point("power_limit_kw", clamp(limit_kw, 0.0, self.config.rated_kw))

    def close(self) -> None:
        self.device.close()
