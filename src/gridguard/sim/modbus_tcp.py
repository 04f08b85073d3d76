"""Modbus TCP as a device answers it: framing and the register functions, pure (no I/O).

A request is an MBAP header (transaction id, protocol id 0, length of what follows, unit id)
and a PDU (function code, then its fields, big-endian). The answers follow what field meters
and inverters do:

* 03 / 04 read holding / input registers: 1 to 125 of them, else exception 03 (illegal data
  value); a block across registers the map does not name reads zeros, as a meter's gaps do;
  past register 65535, exception 02 (illegal data address);
* 06 / 16 write one / several holding registers (16: 1 to 123, byte count 2 per register,
  else exception 03): only registers of writable points, else exception 02, nothing written;
* any other function: exception 01 (illegal function).

An exception answer is the function code with its high bit set (``code | 0x80``) and the
exception code. Several requests in one TCP segment are split here and answered in order.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

MBAP = struct.Struct(">HHHB")
"""Transaction id, protocol id, length (unit id + PDU bytes), unit id."""
MAX_READ_REGISTERS = 125
MAX_WRITE_REGISTERS = 123
MAX_PDU_BYTES = 253
ILLEGAL_FUNCTION = 0x01
ILLEGAL_DATA_ADDRESS = 0x02
ILLEGAL_DATA_VALUE = 0x03
GATEWAY_TARGET_FAILED = 0x0B
"""No device with that unit id behind this endpoint (what a TCP gateway answers)."""

Table = Literal["holding", "input"]


class FrameError(Exception):
    """The byte stream is not Modbus TCP (protocol id not 0, impossible length): hang up."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One request or answer: its transaction id, unit id and PDU."""

    transaction_id: int
    unit_id: int
    pdu: bytes

    def encode(self) -> bytes:
        header = MBAP.pack(self.transaction_id, 0, len(self.pdu) + 1, self.unit_id)
        return header + self.pdu


class Registers(Protocol):
    """One device's register image (the simulator's RegisterBank)."""

    def read(self, function: Table, address: int, count: int) -> list[int]: ...

    def writable(self, address: int, count: int) -> bool: ...

    def write(self, address: int, values: Sequence[int]) -> list[str]: ...


def split_frames(buffer: bytes) -> tuple[list[Frame], bytes]:
    """The complete frames at the start of ``buffer`` and the incomplete rest."""
    frames: list[Frame] = []
    while len(buffer) >= MBAP.size:
        transaction_id, protocol_id, length, unit_id = MBAP.unpack_from(buffer)
        if protocol_id != 0 or not 2 <= length <= MAX_PDU_BYTES + 1:
            raise FrameError(f"not Modbus TCP: protocol id {protocol_id}, length {length}")
        end = MBAP.size + length - 1
        if len(buffer) < end:
            break
        frames.append(Frame(transaction_id, unit_id, buffer[MBAP.size : end]))
        buffer = buffer[end:]
    return frames, buffer


def exception_pdu(function: int, code: int) -> bytes:
    return bytes([(function | 0x80) & 0xFF, code])


def _read(bank: Registers, pdu: bytes) -> bytes:
    function = pdu[0]
    if len(pdu) != 5:
        return exception_pdu(function, ILLEGAL_DATA_VALUE)
    address, count = struct.unpack_from(">HH", pdu, 1)
    if not 1 <= count <= MAX_READ_REGISTERS:
        return exception_pdu(function, ILLEGAL_DATA_VALUE)
    if address + count > 0x10000:
        return exception_pdu(function, ILLEGAL_DATA_ADDRESS)
    values = bank.read("holding" if function == 3 else "input", address, count)
    return bytes([function, 2 * count]) + struct.pack(f">{count}H", *values)


def _write(bank: Registers, pdu: bytes) -> tuple[bytes, list[str]]:
    function = pdu[0]
    if function == 6:
        if len(pdu) != 5:
            return exception_pdu(function, ILLEGAL_DATA_VALUE), []
        address, value = struct.unpack_from(">HH", pdu, 1)
        values: tuple[int, ...] = (value,)
        echo = pdu
    else:
        if len(pdu) < 6:
            return exception_pdu(function, ILLEGAL_DATA_VALUE), []
        address, count, byte_count = struct.unpack_from(">HHB", pdu, 1)
        bad_size = byte_count != 2 * count or len(pdu) != 6 + byte_count
        if not 1 <= count <= MAX_WRITE_REGISTERS or bad_size:
            return exception_pdu(function, ILLEGAL_DATA_VALUE), []
        values = struct.unpack_from(f">{count}H", pdu, 6)
        echo = pdu[:5]
    if address + len(values) > 0x10000 or not bank.writable(address, len(values)):
        return exception_pdu(function, ILLEGAL_DATA_ADDRESS), []
    return echo, bank.write(address, values)


def answer(bank: Registers, pdu: bytes) -> tuple[bytes, list[str]]:
    """The answer PDU to a request PDU, and the names of the points a write touched."""
    function = pdu[0]
    if function in {3, 4}:
        return _read(bank, pdu), []
    if function in {6, 16}:
        return _write(bank, pdu)
    return exception_pdu(function, ILLEGAL_FUNCTION), []
