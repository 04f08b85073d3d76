"""The generic register-map driver that the meter, PCS, PV and charger drivers are built on.

It reads named points in as few requests as the map allows (contiguous registers, one request),
writes one named point, and turns every failure into ``None`` / ``False`` plus a counted failure
on the channel, so the thin drivers never raise out of ``read()`` (D21: a device that stops
answering is marked offline and the others carry on). A whole read is bounded by
``read_budget_s``, so a slow device cannot hold the control cycle past its period.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from pymodbus.exceptions import ModbusException

from gridguard.devices.modbus.codec import CodecError, ReadBlock, decode_block, encode_point
from gridguard.devices.modbus.codec import plan_reads as _plan_reads
from gridguard.devices.modbus.link import Channel, LinkError
from gridguard.devices.modbus.regmap import RegisterMap, WordOrder

log = logging.getLogger(__name__)

_IO_ERRORS = (LinkError, CodecError, ModbusException, OSError, TimeoutError)


class MappedDevice:
    """Named points of one device, read and written through its register map."""

    def __init__(
        self,
        regmap: RegisterMap,
        channel: Channel,
        *,
        name: str,
        word_order: WordOrder | None = None,
        read_budget_s: float = 1.0,
    ) -> None:
        self.regmap = regmap
        self.channel = channel
        self.name = name
        self.word_order: WordOrder = word_order or regmap.word_order
        self.read_budget_s = read_budget_s
        self._plans: dict[tuple[str, ...], list[ReadBlock]] = {}

    @property
    def online(self) -> bool:
        """The device answered its last request."""
        return self.channel.online

    def has(self, point: str) -> bool:
        return point in self.regmap.points

    def plan(self, names: Sequence[str]) -> list[ReadBlock]:
        """The read requests for these points (cached: maps do not change while running)."""
        key = tuple(names)
        if key not in self._plans:
            points = [self.regmap.points[n] for n in names]
            self._plans[key] = _plan_reads(points, self.regmap.max_read_registers)
        return self._plans[key]

    async def read_points(self, names: Sequence[str]) -> dict[str, float] | None:
        """Values of the named points, or None when the device did not answer in time."""
        values: dict[str, float] = {}
        try:
            async with asyncio.timeout(self.read_budget_s):
                for block in self.plan(names):
                    registers = await self.channel.read(block.function, block.address, block.count)
                    values.update(decode_block(block, registers, self.word_order))
        except TimeoutError:
            self.channel.record_failure(f"{self.name}: no full answer in {self.read_budget_s} s")
            return None
        except _IO_ERRORS as exc:
            log.debug("%s: read failed: %s", self.name, exc)
            return None
        return values

    async def write_point(self, name: str, value: float) -> bool:
        """Write one point; False (logged, counted) when the device refused or did not answer."""
        point = self.regmap.points[name]
        try:
            registers = encode_point(point, value, self.word_order)
        except CodecError as exc:
            log.error("%s: not written: %s", self.name, exc)  # noqa: TRY400 (no traceback)
            return False
        try:
            async with asyncio.timeout(self.read_budget_s):
                await self.channel.write(point.address, registers)
        except TimeoutError:
            self.channel.record_failure(f"{self.name}: write {name} not answered in time")
            return False
        except _IO_ERRORS as exc:
            log.debug("%s: write %s failed: %s", self.name, name, exc)
            return False
        return True

    def close(self) -> None:
        self.channel.connection.close()


def clamp(value: float, low: float, high: float) -> float:
    """``value`` limited to ``low..high`` (D20: clamp every setpoint before it is written)."""
    return min(max(value, low), high)
