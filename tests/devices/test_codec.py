"""Pure register codec: decode/encode per shipped map, word order, clamping, D20 refusals."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from gridguard.devices.modbus.codec import (
    CodecError,
    ReadBlock,
    decode_block,
    decode_point,
    decode_raw,
    encode_point,
    encode_raw,
    plan_reads,
)
from gridguard.devices.modbus.regmap import (
    Function,
    Point,
    RegisterType,
    WordOrder,
    load_map,
)

pytestmark = pytest.mark.unit

# (map, point, engineering value, word order, registers on the wire)
MAP_CASES = [
    # why: the ADW300 total power is signed 32-bit W; export is negative
    ("acrel-adw300", "total_power_kw", -12.345, "big", [0xFFFF, 0xCFC7]),
    # why: the same value with the low word first
    ("acrel-adw300", "total_power_kw", -12.345, "little", [0xCFC7, 0xFFFF]),
    # why: phase power, positive import above 65.535 kW needs both words
    ("acrel-adw300", "phase_b_power_kw", 70.0, "big", [0x0001, 0x1170]),
    # why: voltage in 0.1 V steps
    ("acrel-adw300", "voltage_a_v", 230.1, "big", [0x08FD]),
    # why: current in 0.01 A steps
    ("acrel-adw300", "current_c_a", 12.34, "big", [0x04D2]),
    # why: a leading power factor is negative, i16
    ("acrel-adw300", "power_factor_a", -0.5, "big", [0xFE0C]),
    # why: import energy in 0.01 kWh, unsigned 32-bit
    ("acrel-adw300", "import_energy_kwh", 123456.78, "big", [0x00BC, 0x614E]),
    # why: demand in 0.001 kW, unsigned 32-bit
    ("acrel-adw300", "forward_demand_kw", 250.5, "big", [0x0003, 0xD284]),
    # why: this month's maximum demand, same encoding, little word order
    ("acrel-adw300", "max_demand_month_kw", 250.5, "little", [0xD284, 0x0003]),
    # why: PT ratio is a plain u16
    ("acrel-adw300", "pt", 100, "big", [100]),
    # why: PCS setpoint is signed, - charge
    ("generic-pcs", "power_setpoint_kw", -100.0, "big", [0xFFFF, 0xFC18]),
    # why: PCS setpoint, + discharge
    ("generic-pcs", "power_setpoint_kw", 250.0, "big", [0x0000, 0x09C4]),
    # why: SOC in 0.1 %
    ("generic-pcs", "soc_pct", 55.5, "big", [0x022B]),
    # why: run state is a raw code
    ("generic-pcs", "run_state", 1, "big", [1]),
    # why: PV limit in 0.1 % of rated
    ("generic-pv", "power_limit_pct", 50.0, "big", [0x01F4]),
    # why: PV limit in 0.01 kW, u32
    ("generic-pv", "power_limit_kw", 400.0, "big", [0x0000, 0x9C40]),
    # why: PV output, u32 in 0.01 kW
    ("generic-pv", "power_kw", 123.45, "big", [0x0000, 0x3039]),
    # why: charger limit in 0.1 kW
    ("generic-charger", "power_limit_kw", 7.4, "big", [0x004A]),
    # why: connected flag
    ("generic-charger", "connected", 1, "big", [1]),
]


@pytest.mark.parametrize(
    ("map_name", "point_name", "value", "order", "registers"),
    MAP_CASES,
    ids=[f"{c[0]}-{c[1]}-{c[3]}-{c[2]}" for c in MAP_CASES],
)
def test_map_point_round_trip(
    map_name: str, point_name: str, value: float, order: WordOrder, registers: list[int]
) -> None:
    """Each shipped map's points encode to the documented registers and decode back."""
    point = load_map(map_name).points[point_name]
    assert encode_point(point, value, order) == registers
    assert decode_point(point, registers, order) == pytest.approx(value)


RAW_CASES = [
    # why: the smallest i16
    ([0x8000], "i16", "big", -32768),
    # why: the largest u16 is not negative
    ([0xFFFF], "u16", "big", 65535),
    # why: i16 -1
    ([0xFFFF], "i16", "big", -1),
    # why: the smallest i32, high word first
    ([0x8000, 0x0000], "i32", "big", -(2**31)),
    # why: the smallest i32, low word first
    ([0x0000, 0x8000], "i32", "little", -(2**31)),
    # why: u32 with both words set
    ([0x1234, 0x5678], "u32", "big", 0x12345678),
    # why: word order swaps words, not bytes
    ([0x1234, 0x5678], "u32", "little", 0x56781234),
]


@pytest.mark.parametrize(
    ("registers", "reg_type", "order", "raw"),
    RAW_CASES,
    ids=["i16-min", "u16-max", "i16-minus-one", "i32-min-big", "i32-min-little", "u32", "u32-le"],
)
def test_raw_decode_and_encode(
    registers: list[int], reg_type: RegisterType, order: WordOrder, raw: int
) -> None:
    """Raw integers survive a round trip in both word orders."""
    assert decode_raw(registers, reg_type, order) == raw
    assert encode_raw(raw, reg_type, order) == registers


CLAMP_CASES = [
    # why: above i16 range clamps to the largest i16
    (40000, "i16", [0x7FFF]),
    # why: below i16 range clamps to the smallest i16
    (-40000, "i16", [0x8000]),
    # why: above u16 range clamps to 65535
    (70000, "u16", [0xFFFF]),
    # why: above i32 range clamps to the largest i32
    (2**40, "i32", [0x7FFF, 0xFFFF]),
    # why: above u32 range clamps to the largest u32
    (2**40, "u32", [0xFFFF, 0xFFFF]),
]


@pytest.mark.parametrize(
    ("raw", "reg_type", "registers"),
    CLAMP_CASES,
    ids=["i16-high", "i16-low", "u16-high", "i32-high", "u32-high"],
)
def test_encode_clamps_to_type_range(
    raw: int, reg_type: RegisterType, registers: list[int]
) -> None:
    """Out-of-range values clamp to the register type's range instead of wrapping."""
    assert encode_raw(raw, reg_type, "big") == registers


def _point(reg_type: RegisterType, scale: float = 0.1) -> Point:
    return Point(name="limit_kw", address=0, type=reg_type, scale=scale, access="rw")


@pytest.mark.parametrize(
    ("reg_type", "value"),
    [("u16", -1.0), ("u32", -0.5), ("u16", float("nan")), ("i32", float("inf"))],
    ids=["negative-u16", "negative-u32", "nan", "infinite"],
)
def test_encode_refuses(reg_type: RegisterType, value: float) -> None:
    """D20: a negative limit never reaches an unsigned register; non-numbers never encode."""
    with pytest.raises(CodecError):
        encode_point(_point(reg_type), value, "big")


def test_tiny_negative_rounding_to_zero_is_zero() -> None:
    """A float crumb below zero that rounds to raw 0 writes 0 rather than failing."""
    assert encode_point(_point("u16"), -0.04, "big") == [0]


@pytest.mark.parametrize(
    ("registers", "reg_type"),
    [([1], "u32"), ([1, 2], "u16"), ([0x10000], "u16"), ([-1], "i16")],
    ids=["too-few", "too-many", "above-16-bit", "negative-register"],
)
def test_decode_rejects_bad_registers(registers: list[int], reg_type: RegisterType) -> None:
    """Registers of the wrong count or outside 0..65535 are an error, not a value."""
    with pytest.raises(CodecError):
        decode_raw(registers, reg_type, "big")


def _names(blocks: Sequence[ReadBlock]) -> list[tuple[Function, int, int, list[str]]]:
    return [(b.function, b.address, b.count, [p.name for p in b.points]) for b in blocks]


def test_plan_batches_adw300_power_registers() -> None:
    """The meter's three phase powers and the total are one read of 8 registers."""
    meter = load_map("acrel-adw300").points
    names = ["total_power_kw", "phase_a_power_kw", "phase_b_power_kw", "phase_c_power_kw"]
    blocks = plan_reads([meter[n] for n in names])
    assert _names(blocks) == [
        (
            "holding",
            0x1E,
            8,
            ["phase_a_power_kw", "phase_b_power_kw", "phase_c_power_kw", "total_power_kw"],
        ),
    ]


def test_plan_splits_at_gaps_functions_and_size() -> None:
    """Gaps, other tables and the size cap each start a new read."""
    pcs = load_map("generic-pcs").points
    blocks = plan_reads(list(pcs.values()), max_registers=4)
    assert _names(blocks) == [
        ("holding", 0x100, 2, ["power_setpoint_kw"]),
        ("input", 0x0, 4, ["power_kw", "soc_pct", "max_charge_kw"]),
        ("input", 0x4, 2, ["max_discharge_kw", "run_state"]),
    ]


def test_decode_block_spreads_registers_to_points() -> None:
    """A batched answer is decoded point by point at its offsets."""
    pcs = load_map("generic-pcs").points
    (block,) = plan_reads([pcs["power_kw"], pcs["soc_pct"]])
    values = decode_block(block, [0xFFFF, 0xFC18, 0x022B], "big")
    assert values == pytest.approx({"power_kw": -100.0, "soc_pct": 55.5})
    with pytest.raises(CodecError):
        decode_block(block, [0, 0], "big")
