"""Pure Modbus register codec: points to and from ``list[int]`` registers, and read batching.

No I/O here: drivers and the simulator's servers both use these functions, so what the agent
decodes is exactly what the simulator encoded.

* A register is a 16-bit unsigned int (0..65535). 32-bit values span two registers; ``big``
  word order puts the high word first (the default), ``little`` the low word first.
* Engineering value = raw * scale. Encoding rounds to the nearest raw step and clamps to the
  register type's range, but refuses a negative value for an unsigned register (D20: a negative
  limit must never reach an unsigned register) and a value that is not a finite number.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gridguard.devices.modbus.regmap import Function, Point, RegisterType, WordOrder

_RANGE: dict[RegisterType, tuple[int, int]] = {
    "u16": (0, 0xFFFF),
    "i16": (-0x8000, 0x7FFF),
    "u32": (0, 0xFFFF_FFFF),
    "i32": (-0x8000_0000, 0x7FFF_FFFF),
}


class CodecError(ValueError):
    """A value cannot be encoded into, or decoded from, the given registers."""


def decode_raw(registers: Sequence[int], reg_type: RegisterType, word_order: WordOrder) -> int:
    """Registers (one or two words) to the raw integer of ``reg_type``."""
    words = 1 if reg_type in ("u16", "i16") else 2
    if len(registers) != words:
        raise CodecError(f"{reg_type} needs {words} register(s), got {len(registers)}")
    if any(not 0 <= r <= 0xFFFF for r in registers):
        raise CodecError(f"register value out of 0..65535: {list(registers)}")
    ordered = list(registers) if word_order == "big" else list(reversed(registers))
    raw = 0
    for word in ordered:
        raw = (raw << 16) | word
    if reg_type.startswith("i") and raw >= 1 << (16 * words - 1):
        raw -= 1 << (16 * words)
    return raw


def encode_raw(raw: int, reg_type: RegisterType, word_order: WordOrder) -> list[int]:
    """A raw integer to registers; clamps to the type's range, refuses negatives if unsigned."""
    low, high = _RANGE[reg_type]
    if raw < 0 and low == 0:
        raise CodecError(f"refusing negative value {raw} for unsigned register type {reg_type}")
    raw = min(max(raw, low), high)
    if reg_type in ("u16", "i16"):
        return [raw & 0xFFFF]
    unsigned = raw & 0xFFFF_FFFF
    words = [unsigned >> 16, unsigned & 0xFFFF]
    return words if word_order == "big" else words[::-1]


def decode_point(point: Point, registers: Sequence[int], word_order: WordOrder) -> float:
    """The point's engineering value (raw * scale) from exactly its registers."""
    return decode_raw(registers, point.type, word_order) * point.scale


def encode_point(point: Point, value: float, word_order: WordOrder) -> list[int]:
    """The point's registers for an engineering value (rounded to the raw step, clamped)."""
    if not math.isfinite(value):
        raise CodecError(f"{point.name}: refusing non-finite value {value}")
    return encode_raw(round(value / point.scale), point.type, word_order)


@dataclass(frozen=True, slots=True)
class ReadBlock:
    """One Modbus read request covering several adjacent points."""

    function: Function
    address: int
    count: int
    points: tuple[Point, ...]


def plan_reads(points: Iterable[Point], max_registers: int = 64) -> list[ReadBlock]:
    """Batch points into as few reads as possible: contiguous addresses, same function.

    Gaps are never read across (a device may refuse unmapped addresses), and no block is longer
    than ``max_registers``.
    """
    ordered = sorted(points, key=lambda p: (p.function, p.address))
    blocks: list[ReadBlock] = []
    for point in ordered:
        last = blocks[-1] if blocks else None
        if (
            last is not None
            and last.function == point.function
            and last.address + last.count == point.address
            and last.count + point.words <= max_registers
        ):
            blocks[-1] = ReadBlock(
                last.function, last.address, last.count + point.words, (*last.points, point)
            )
        else:
            blocks.append(ReadBlock(point.function, point.address, point.words, (point,)))
    return blocks


def decode_block(
    block: ReadBlock, registers: Sequence[int], word_order: WordOrder
) -> dict[str, float]:
    """Every point of a read block from the registers the device returned for it."""
    if len(registers) != block.count:
        raise CodecError(
            f"read at {block.address:#06x}: expected {block.count} registers, got {len(registers)}"
        )
    values: dict[str, float] = {}
    for point in block.points:
        offset = point.address - block.address
        values[point.name] = decode_point(
            point, registers[offset : offset + point.words], word_order
        )
    return values
