"""Gateway meter over Modbus (GridMeter), for any map of kind "meter" (e.g. acrel-adw300).

Sign convention: + import / - export at the grid connection. Raw power is the meter's secondary
value; the driver multiplies it by the configured PT x CT and by ``direction`` (-1 when the
meter is mounted reversed). The meter's forward demand is import demand only when the meter is
mounted the right way round, so with ``direction = -1`` ``demand_kw`` is reported as None.
"""

from __future__ import annotations

from gridguard.devices.modbus.mapped import MappedDevice
from gridguard.devices.modbus.regmap import PHASE_POINTS
from gridguard.devices.protocols import MeterReading
from gridguard.site.config import MeterConfig


class ModbusMeter:
    """A GridMeter reading total, per-phase power and forward demand through a register map."""

    def __init__(self, config: MeterConfig, device: MappedDevice) -> None:
        self.config = config
        self.device = device
        self._factor = config.pt * config.ct * config.direction
        names = ["total_power_kw"]
        self._per_phase = config.per_phase and device.has(PHASE_POINTS[0])
        if self._per_phase:
            names += PHASE_POINTS
        self._demand = config.direction == 1 and device.has("forward_demand_kw")
        if self._demand:
            names.append("forward_demand_kw")
        self._names = tuple(names)
        self._last = MeterReading(grid_power_kw=0.0, phase_power_kw=None, valid=False)

    @property
    def online(self) -> bool:
        return self.device.online

    async def read(self) -> MeterReading:
        """Total and per-phase power in kW (+ import); valid=False with the last values on error."""
        values = await self.device.read_points(self._names)
        if values is None:
            self._last = MeterReading(
                grid_power_kw=self._last.grid_power_kw,
                phase_power_kw=self._last.phase_power_kw,
                valid=False,
                demand_kw=self._last.demand_kw,
            )
            return self._last
        self._last = self.reading_from(values)
        return self._last

    def reading_from(self, values: dict[str, float]) -> MeterReading:
        """Pure: decoded point values to a scaled, direction-corrected reading."""
        phases: tuple[float, float, float] | None = None
        if self._per_phase:
            a, b, c = (values[n] * self._factor for n in PHASE_POINTS)
            phases = (a, b, c)
        demand = values["forward_demand_kw"] * abs(self._factor) if self._demand else None
        return MeterReading(
            grid_power_kw=values["total_power_kw"] * self._factor,
            phase_power_kw=phases,
            valid=True,
            demand_kw=demand,
        )

    def close(self) -> None:
        self.device.close()
