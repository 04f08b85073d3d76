"""Register maps as data: one TOML (or JSON) file per device model, validated at start.

A map names every point a driver needs, with its unit in the name (``power_kw``, ``soc_pct``)::

    kind = "storage"            # meter | storage | pv | charger
    word_order = "big"          # order of the 16-bit words of a 32-bit value
    [points.soc_pct]
    address = 0x0012
    type = "u16"                # u16 | i16 | u32 | i32
    scale = 0.1                 # engineering value = raw * scale
    function = "holding"        # holding (03/06/16) | input (04)
    access = "r"                # r | rw

The map name is the device's ``model`` (or the meter's ``type``, lower-cased) in the site
configuration. Maps ship in ``gridguard/devices/maps``; a user maps folder is searched first, so
a new device model needs a file, not code. A map that is wrong is refused as a whole with
:class:`MapError`, whose message names the file, the key and the rule
(``generic-pcs.toml: points.soc_pct.type: ...``).
"""

from __future__ import annotations

import json
import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

RegisterType = Literal["u16", "i16", "u32", "i32"]
Function = Literal["holding", "input"]
WordOrder = Literal["big", "little"]
MapKind = Literal["meter", "storage", "pv", "charger"]  # "meter" or a DeviceKind
"""What a register map describes: the gateway meter or one controllable device class."""

WORDS: dict[RegisterType, int] = {"u16": 1, "i16": 1, "u32": 2, "i32": 2}
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_KEY = re.compile(r"^[a-z_][a-z0-9_.]*$")


class MapError(Exception):
    """A register map cannot be used; the message names the file, the key and the rule."""


class Point(BaseModel):
    """One value in a device's register space."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="set from the key; unit in the name")
    address: int = Field(ge=0, le=0xFFFF, description="register address, 0-based")
    type: RegisterType = Field(description="register type: u16, i16, u32 or i32")
    scale: float = Field(default=1.0, gt=0, description="engineering value = raw * scale")
    function: Function = Field(default="holding", description="holding (03) or input (04)")
    access: Literal["r", "rw"] = Field(default="r", description="rw: a setpoint")

    @property
    def words(self) -> int:
        return WORDS[self.type]

    @property
    def signed(self) -> bool:
        return self.type.startswith("i")

    @model_validator(mode="after")
    def _fits(self) -> Self:
        if self.address + self.words - 1 > 0xFFFF:
            raise ValueError("address: a 32-bit point must end at or below 0xFFFF")
        if self.access == "rw" and self.function == "input":
            raise ValueError("access: input registers are read-only; use function 'holding'")
        return self


# Per kind: points a driver cannot work without, and points that must be writable / signed.
_REQUIRED: dict[MapKind, tuple[str, ...]] = {
    "meter": ("total_power_kw",),
    "storage": ("power_setpoint_kw", "power_kw", "soc_pct"),
    "pv": ("power_kw",),
    "charger": ("power_kw", "power_limit_kw"),
}
_WRITABLE = ("power_setpoint_kw", "power_limit_kw", "power_limit_pct")
_SIGNED: dict[MapKind, tuple[str, ...]] = {
    "meter": ("total_power_kw", "phase_a_power_kw", "phase_b_power_kw", "phase_c_power_kw"),
    "storage": ("power_setpoint_kw", "power_kw"),  # + discharge / - charge
    "pv": (),
    "charger": (),
}
PHASE_POINTS = ("phase_a_power_kw", "phase_b_power_kw", "phase_c_power_kw")


class RegisterMap(BaseModel):
    """A device model's register map, checked for what its kind of driver needs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: MapKind
    description: str = ""
    word_order: WordOrder = Field(default="big", description="word order of 32-bit values")
    max_read_registers: int = Field(default=64, ge=1, le=125, description="per batched read")
    run_state_running: tuple[int, ...] = Field(
        default=(1,), description="storage: run_state values meaning 'running'"
    )
    points: dict[str, Point]

    @model_validator(mode="before")
    @classmethod
    def _names_from_keys(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("points"), dict):
            points = {
                key: ({**value, "name": key} if isinstance(value, dict) else value)
                for key, value in data["points"].items()
            }
            data = {**data, "points": points}
        return data

    @model_validator(mode="after")
    def _fit_for_kind(self) -> Self:
        for name in _REQUIRED[self.kind]:
            if name not in self.points:
                raise ValueError(f"points.{name}: required for kind {self.kind!r}")
        if self.kind == "pv" and not {"power_limit_kw", "power_limit_pct"} & set(self.points):
            raise ValueError("points.power_limit_kw: kind 'pv' needs it or power_limit_pct")
        present = [name for name in PHASE_POINTS if name in self.points]
        if present and len(present) != len(PHASE_POINTS):
            raise ValueError(f"points.{present[0]}: give all three phases or none")
        for name in _WRITABLE:
            if name in self.points and self.points[name].access != "rw":
                raise ValueError(f"points.{name}.access: a setpoint must be 'rw'")
        for name in _SIGNED[self.kind]:
            if name in self.points and not self.points[name].signed:
                raise ValueError(f"points.{name}.type: must be signed (i16 or i32)")
        self._no_overlap()
        return self

    def _no_overlap(self) -> None:
        owner: dict[tuple[str, int], str] = {}
        for point in self.points.values():
            for address in range(point.address, point.address + point.words):
                other = owner.setdefault((point.function, address), point.name)
                if other != point.name:
                    raise ValueError(
                        f"points.{point.name}.address: overlaps {other} at {address:#06x}"
                    )

    def point(self, name: str) -> Point | None:
        return self.points.get(name)


def _loc(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def parse_map(data: dict[str, Any], source: str) -> RegisterMap:
    """Validate a decoded map; raise MapError naming the source file, key and rule."""
    try:
        return RegisterMap.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            msg = err["msg"].removeprefix("Value error, ")
            loc = tuple(err["loc"])
            where = _loc(loc)
            head, sep, rest = msg.partition(": ")
            if sep and _KEY.match(head):  # our validators lead with the key they are about
                where, msg = (f"{where}.{head}" if loc else head), rest
            if err["type"] == "extra_forbidden":
                msg = "unknown key"
            lines.append(f"{source}: {where}: {msg}")
        raise MapError("\n".join(lines)) from exc


def map_name(model: str) -> str:
    """The map file name for a configured model or meter type: "Acrel-ADW300" -> acrel-adw300."""
    return model.strip().lower()


def _decode(text: str, source: str) -> dict[str, Any]:
    try:
        data = json.loads(text) if source.endswith(".json") else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise MapError(f"{source}: cannot parse: {exc}") from exc
    if not isinstance(data, dict):
        raise MapError(f"{source}: (top level): must be a table")
    return data


def load_map(model: str, maps_dir: Path | None = None) -> RegisterMap:
    """Find and validate the map for ``model``: the user folder first, then the shipped maps."""
    name = map_name(model)
    if not _NAME.match(name):
        raise MapError(f"{model!r}: not a valid register map name")
    if maps_dir is not None:
        for suffix in (".toml", ".json"):
            path = maps_dir / f"{name}{suffix}"
            if path.is_file():
                return parse_map(_decode(path.read_text(encoding="utf-8"), str(path)), str(path))
    shipped = resources.files("gridguard.devices").joinpath("maps", f"{name}.toml")
    if shipped.is_file():
        return parse_map(_decode(shipped.read_text(encoding="utf-8"), shipped.name), shipped.name)
    where = f"{maps_dir} or the shipped maps" if maps_dir else "the shipped maps"
    raise MapError(f"{name}.toml: no register map for model {model!r} in {where}")


def shipped_map_names() -> list[str]:
    """Names of the maps that ship with GridGuard."""
    folder = resources.files("gridguard.devices").joinpath("maps")
    return sorted(
        p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml")
    )
