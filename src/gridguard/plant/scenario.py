"""Scenarios as data: a TOML file naming a CSV trace and describing the site.

The CSV has columns ``seconds,load_kw,pv_kw`` at any regular step, optionally
``load_a_kw,load_b_kw,load_c_kw`` (unbalanced phases; otherwise the load is split equally)
and ``charger_kw`` (what the vehicles would draw, shared equally over the piles).
The TOML::

    trace = "factory_day.csv"
    start = "2024-06-12T00:00:00+08:00"   # ISO time: month and time zone apply
    time_zone = "Asia/Shanghai"           # optional, for month boundaries (D14)
    [storage]  power_kw, energy_kwh, soc_pct, soc_min_pct, soc_max_pct, efficiency
    [pv]       rated_kw
    [chargers] count, rated_kw, min_kw    # optional
    [plant]    actuator_lag_s, assumed_lag_s, meter_noise_kw, meter_delay_s,
               command_delay_s, bms_taper_pct   # optional, see ``LabPlant``
    [strategy] the spec's own field names: streaming_status, streaming_condition, ...

Between samples a load is held (loads switch) and PV is interpolated linearly (irradiance
is continuous), so ``inputs_at`` gives the plant's inputs at any second.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from gridguard.plant.model import ChargerParams, PlantInputs, StorageParams


class ScenarioError(ValueError):
    """The scenario files cannot be used; the message names the file and the key."""


@dataclass(frozen=True, slots=True)
class LabPlant:
    """The imperfections of a real site, as the scenario's ``[plant]`` describes them."""

    actuator_lag_s: float = 1.0
    """True first-order lag of every actuator."""
    assumed_lag_s: float = -1.0
    """The lag the controller is told (its ``actuator_lag_s``); < 0 = the true lag."""
    meter_noise_kw: float = 0.2
    """Standard deviation of the meter's noise, per phase."""
    meter_delay_s: float = 0.0
    """Age of the meter reading when the controller gets it (whole control periods)."""
    command_delay_s: float = 0.0
    """Time from writing a setpoint to the device acting on it (whole control periods)."""
    bms_taper_pct: float = 2.0
    """The BMS tapers charge (discharge) power to 0 over this many SOC points at the edge."""

    @property
    def told_lag_s(self) -> float:
        """The actuator lag the controller is configured with."""
        return self.actuator_lag_s if self.assumed_lag_s < 0.0 else self.assumed_lag_s

    def with_values(self, values: Mapping[str, object], where: str) -> LabPlant:
        """A copy with ``values`` (key -> number) applied; unknown keys and bad numbers fail."""
        known = {f.name for f in fields(self)}
        changes: dict[str, float] = {}
        for key, raw in values.items():
            if key not in known:
                raise ScenarioError(f"{where}: unknown plant key {key!r} (known: {sorted(known)})")
            try:
                value = float(raw)  # type: ignore[arg-type]
            except (TypeError, ValueError) as exc:
                raise ScenarioError(f"{where}: plant {key} must be a number, got {raw!r}") from exc
            if not value >= 0.0 and key != "assumed_lag_s":
                raise ScenarioError(f"{where}: plant {key} must be >= 0, got {value}")
            changes[key] = value
        return replace(self, **changes)


@dataclass(frozen=True)
class Scenario:
    name: str
    start: datetime  # aware
    zone: ZoneInfo
    step_s: int
    load_phase_kw: tuple[list[float], list[float], list[float]]
    pv_kw: list[float]
    charger_kw: list[float]
    storage: StorageParams | None
    soc_pct: float
    pv_rated_kw: float
    chargers: tuple[ChargerParams, ...]
    strategy: dict[str, Any] = field(default_factory=dict)
    plant: LabPlant = field(default_factory=LabPlant)

    @property
    def duration_s(self) -> int:
        """Seconds covered: each sample stands for one step."""
        return self.step_s * len(self.pv_kw)

    def inputs_at(self, t_s: int) -> PlantInputs:
        """The world at second ``t_s`` from the start: loads held, PV interpolated."""
        i, into = divmod(t_s, self.step_s)
        a, b, c = self.load_phase_kw
        pv = self.pv_kw
        j = min(i + 1, len(pv) - 1)
        pv_kw = pv[i] + (pv[j] - pv[i]) * into / self.step_s
        n = len(self.chargers)
        each = self.charger_kw[i] / n if n else 0.0
        return PlantInputs(
            load_phase_kw=(a[i], b[i], c[i]),
            pv_available_kw=(pv_kw,),
            charger_demand_kw=tuple(min(each, ch.rated_kw) for ch in self.chargers),
        )

    def per_second(self) -> tuple[np.ndarray, np.ndarray]:
        """Total load (incl. vehicles) and PV per second, for the optimum and the charts."""
        n = self.duration_s
        t = np.arange(n)
        idx = t // self.step_s
        load = np.add.reduce([np.asarray(x)[idx] for x in self.load_phase_kw])
        load = load + np.minimum(
            np.asarray(self.charger_kw)[idx],
            sum(ch.rated_kw for ch in self.chargers),
        )
        pv = np.interp(t, np.arange(len(self.pv_kw)) * self.step_s, np.asarray(self.pv_kw))
        return load, pv

    def min_phase_per_second(self) -> np.ndarray:
        """The lowest phase's load per second (vehicles spread over the phases)."""
        idx = np.arange(self.duration_s) // self.step_s
        vehicles = np.minimum(
            np.asarray(self.charger_kw)[idx], sum(ch.rated_kw for ch in self.chargers)
        )
        lowest = np.minimum.reduce([np.asarray(x)[idx] for x in self.load_phase_kw])
        return np.asarray(lowest + vehicles / 3.0)


def _section(doc: dict[str, Any], name: str, path: Path) -> dict[str, Any]:
    value = doc.get(name, {})
    if not isinstance(value, dict):
        raise ScenarioError(f"{path}: [{name}] must be a table")
    return value


def _read_trace(path: Path) -> dict[str, np.ndarray]:
    try:
        with path.open(encoding="utf-8") as f:
            header = f.readline().strip().split(",")
        data = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    except (OSError, ValueError) as exc:
        raise ScenarioError(f"{path}: cannot read trace: {exc}") from exc
    for needed in ("seconds", "load_kw", "pv_kw"):
        if needed not in header:
            raise ScenarioError(f"{path}: missing column {needed!r}")
    return {name: data[:, k] for k, name in enumerate(header)}


def _step_s(seconds: np.ndarray, path: Path) -> int:
    steps = np.diff(seconds)
    if len(steps) == 0 or not np.allclose(steps, steps[0]) or steps[0] < 1:
        raise ScenarioError(f"{path}: seconds must advance by one regular step of >= 1 s")
    return int(steps[0])


def load_scenario(path: Path) -> Scenario:
    """Read a scenario TOML and the CSV trace it names (relative to the TOML)."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ScenarioError(f"{path}: {exc}") from exc
    try:
        trace_path = path.parent / str(doc["trace"])
        start = datetime.fromisoformat(str(doc["start"]))
    except (KeyError, ValueError) as exc:
        raise ScenarioError(f"{path}: needs trace and an ISO start time ({exc})") from exc
    if start.tzinfo is None:
        raise ScenarioError(f"{path}: start must carry a UTC offset")
    cols = _read_trace(trace_path)
    step = _step_s(cols["seconds"], trace_path)
    load = cols["load_kw"].tolist()
    phases = (
        tuple(cols[k].tolist() for k in ("load_a_kw", "load_b_kw", "load_c_kw"))
        if "load_a_kw" in cols
        else ([v / 3 for v in load],) * 3
    )
    st, pv, ch = (_section(doc, n, path) for n in ("storage", "pv", "chargers"))
    storage = None
    if st:
        storage = StorageParams(
            power_kw=float(st["power_kw"]),
            energy_kwh=float(st["energy_kwh"]),
            soc_min_pct=float(st.get("soc_min_pct", 10.0)),
            soc_max_pct=float(st.get("soc_max_pct", 95.0)),
            efficiency=float(st.get("efficiency", 0.92)),
        )
    chargers = tuple(
        ChargerParams(float(ch["rated_kw"]), float(ch.get("min_kw", 0.0)))
        for _ in range(int(ch.get("count", 0)))
    )
    return Scenario(
        name=path.stem,
        start=start,
        zone=ZoneInfo(str(doc.get("time_zone", "Asia/Shanghai"))),
        step_s=step,
        load_phase_kw=(list(phases[0]), list(phases[1]), list(phases[2])),
        pv_kw=cols["pv_kw"].tolist(),
        charger_kw=cols["charger_kw"].tolist() if "charger_kw" in cols else [0.0] * len(load),
        storage=storage,
        soc_pct=float(st.get("soc_pct", 50.0)),
        pv_rated_kw=float(pv.get("rated_kw", 0.0)),
        chargers=chargers,
        strategy=_section(doc, "strategy", path),
        plant=LabPlant().with_values(_section(doc, "plant", path), f"{path} [plant]"),
    )
