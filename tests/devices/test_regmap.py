"""Register maps as data: shipped maps load, wrong maps are refused naming file and key."""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from gridguard.devices.modbus.regmap import MapError, load_map, map_name, shipped_map_names

pytestmark = pytest.mark.unit


def test_shipped_maps_all_load() -> None:
    """Every shipped map validates for its kind."""
    names = shipped_map_names()
    assert names == ["acrel-adw300", "generic-charger", "generic-pcs", "generic-pv"]
    kinds = {n: load_map(n).kind for n in names}
    assert kinds == {
        "acrel-adw300": "meter",
        "generic-charger": "charger",
        "generic-pcs": "storage",
        "generic-pv": "pv",
    }


def test_meter_type_selects_map_case_insensitively() -> None:
    """The meter type "Acrel-ADW300" in the site config selects acrel-adw300.toml."""
    assert map_name("Acrel-ADW300") == "acrel-adw300"
    assert load_map("Acrel-ADW300").points["total_power_kw"].address == 0x0024


def test_adw300_published_addresses() -> None:
    """The ADW300 map matches the published register addresses."""
    points = load_map("acrel-adw300").points
    addresses = {name: p.address for name, p in points.items()}
    assert addresses["phase_a_power_kw"] == 0x001E
    assert addresses["phase_c_power_kw"] == 0x0022
    assert addresses["voltage_c_v"] == 0x0016
    assert addresses["current_a_a"] == 0x001A
    assert addresses["power_factor_total"] == 0x0039
    assert addresses["import_energy_kwh"] == 0x003E
    assert addresses["export_energy_kwh"] == 0x0040
    assert addresses["max_demand_month_kw"] == 0x0064
    assert addresses["forward_demand_kw"] == 0x015A
    assert (addresses["pt"], addresses["ct"]) == (0x000E, 0x000F)
    assert {p.function for p in points.values()} == {"holding"}


def _shipped(name: str) -> dict[str, Any]:
    text = resources.files("gridguard.devices").joinpath("maps", f"{name}.toml").read_text()
    return tomllib.loads(text)


def _write_toml(path: Path, data: dict[str, Any]) -> None:
    lines = [f"{k} = {_toml(v)}" for k, v in data.items() if k != "points"]
    for name, point in data.get("points", {}).items():
        lines.append(f"[points.{name}]")
        lines.extend(f"{k} = {_toml(v)}" for k, v in point.items())
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _toml(value: object) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return repr(value)


def _drop(name: str) -> Callable[[dict[str, Any]], None]:
    def edit(d: dict[str, Any]) -> None:
        del d["points"][name]

    return edit


def _set(point: str, key: str, value: object) -> Callable[[dict[str, Any]], None]:
    def edit(d: dict[str, Any]) -> None:
        d["points"][point][key] = value

    return edit


def _top(key: str, value: object) -> Callable[[dict[str, Any]], None]:
    def edit(d: dict[str, Any]) -> None:
        d[key] = value

    return edit


BAD_MAPS = [
    # why: a PCS map without SOC cannot feed StorageReading
    ("generic-pcs", _drop("soc_pct"), "points.soc_pct: required for kind 'storage'"),
    # why: only u16/i16/u32/i32 exist
    ("generic-pcs", _set("soc_pct", "type", "f32"), "points.soc_pct.type: Input should be"),
    # why: a setpoint the driver cannot write
    (
        "generic-pcs",
        _set("power_setpoint_kw", "access", "r"),
        "points.power_setpoint_kw.access: a setpoint must be 'rw'",
    ),
    # why: charging (negative) setpoints need a signed register (D20)
    (
        "generic-pcs",
        _set("power_setpoint_kw", "type", "u32"),
        "points.power_setpoint_kw.type: must be signed",
    ),
    # why: two points on the same register
    ("generic-pcs", _set("max_charge_kw", "address", 2), "points.max_charge_kw.address: overlaps"),
    # why: a misspelt key is refused rather than ignored
    ("generic-pcs", _set("soc_pct", "unit", "%"), "points.soc_pct.unit: unknown key"),
    # why: input registers cannot be written
    (
        "generic-charger",
        _set("power_limit_kw", "function", "input"),
        "points.power_limit_kw.access: input registers are read-only",
    ),
    # why: a 32-bit point must fit in the address space
    ("generic-pv", _set("power_limit_kw", "address", 0xFFFF), "points.power_limit_kw.address"),
    # why: a PV map needs a limit point of either unit
    (
        "generic-pv",
        lambda d: [d["points"].pop(n) for n in ("power_limit_kw", "power_limit_pct")],
        "points.power_limit_kw: kind 'pv' needs it or power_limit_pct",
    ),
    # why: per-phase power is all three phases or none
    ("acrel-adw300", _drop("phase_c_power_kw"), "points.phase_a_power_kw: give all three"),
    # why: a zero scale would divide by zero when encoding
    ("generic-charger", _set("power_kw", "scale", 0), "points.power_kw.scale:"),
    # why: the kind selects the driver
    ("generic-charger", _top("kind", "heat-pump"), "kind: Input should be"),
]


@pytest.mark.parametrize(
    ("base", "edit", "message"),
    BAD_MAPS,
    ids=[
        "missing-required",
        "unknown-type",
        "read-only-setpoint",
        "unsigned-storage-setpoint",
        "overlap",
        "unknown-key",
        "writable-input-register",
        "address-overflow",
        "pv-without-limit",
        "two-phases",
        "zero-scale",
        "unknown-kind",
    ],
)
def test_bad_map_refused_naming_file_and_key(
    tmp_path: Path, base: str, edit: Callable[[dict[str, Any]], object], message: str
) -> None:
    """A wrong user map is refused at load with the file path and the key in the message."""
    data = copy.deepcopy(_shipped(base))
    edit(data)
    _write_toml(tmp_path / "my-device.toml", data)
    with pytest.raises(MapError) as err:
        load_map("my-device", tmp_path)
    text = str(err.value)
    assert text.startswith(f"{tmp_path / 'my-device.toml'}: ")
    assert message in text


def test_user_folder_adds_a_model_and_json_works(tmp_path: Path) -> None:
    """A user JSON map in the maps folder adds a device model without code."""
    (tmp_path / "acme-pile.json").write_text(
        '{"kind": "charger", "points": {'
        '"power_kw": {"address": 10, "type": "u16", "scale": 0.1, "function": "input"},'
        '"power_limit_kw": {"address": 20, "type": "u16", "scale": 0.1, "access": "rw"}}}',
        encoding="utf-8",
    )
    regmap = load_map("ACME-Pile", tmp_path)
    assert regmap.kind == "charger"
    assert regmap.points["power_limit_kw"].name == "power_limit_kw"


def test_user_folder_overrides_and_falls_back(tmp_path: Path) -> None:
    """The user folder is searched first; shipped maps still load with a folder given."""
    data = _shipped("generic-pv")
    data["description"] = "site-specific"
    _write_toml(tmp_path / "generic-pv.toml", data)
    assert load_map("generic-pv", tmp_path).description == "site-specific"
    assert load_map("generic-pcs", tmp_path).kind == "storage"


@pytest.mark.parametrize(
    ("model", "message"),
    [("no-such-pcs", "no-such-pcs.toml: no register map"), ("../etc/passwd", "not a valid")],
    ids=["unknown-model", "path-traversal"],
)
def test_unknown_or_unsafe_model_names(tmp_path: Path, model: str, message: str) -> None:
    """An unknown model names the file looked for; a path is not a model name."""
    with pytest.raises(MapError) as err:
        load_map(model, tmp_path)
    assert message in str(err.value)


def test_unparsable_file_is_refused(tmp_path: Path) -> None:
    """A TOML syntax error names the file."""
    (tmp_path / "broken.toml").write_text("kind = \n", encoding="utf-8")
    with pytest.raises(MapError, match=r"broken\.toml: cannot parse"):
        load_map("broken", tmp_path)
