"""What the control engine reports: a frozen status snapshot and its events (D18, D21).

The edge agent publishes these (MQTT status topic, metrics); nothing here does I/O. Power in
kW, + import / + discharge, as everywhere (``gridguard.vocab``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gridguard.vocab import DeviceKind

EventKind = Literal[
    "failsafe_on",
    "failsafe_off",
    "device_offline",
    "device_online",
    "setpoint_overridden",
    "error",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class DeviceStatus(_Frozen):
    kind: DeviceKind
    id: int
    meter_id: int
    online: bool
    power_kw: float = Field(description="present output: storage + discharge, PV/pile >= 0")
    setpoint_kw: float | None = Field(
        description="last value written (storage power or limit); in observe mode the value "
        "it would write"
    )
    soc_pct: float | None = None


class MeterStatus(_Frozen):
    meter_id: int
    grid_power_kw: float | None = Field(description="+ import; None when the meter is silent")
    phase_power_kw: tuple[float, float, float] | None = None
    demand_kw: float = Field(
        description="sliding-window demand (D17), kW; averaged over the steps so far while "
        "demand_partial"
    )
    demand_partial: bool = Field(
        default=False, description="the window is not full yet (start, month boundary, gap)"
    )
    reason: str = Field(default="", description="the bound that binds and what the setpoints do")
    dynamic_demand_kw: int = Field(description="month's highest demand, integer kW (D18)")
    target_kw: float | None = Field(description="T (D18); None when over-demand is off")
    shave_kw: float | None = Field(description="level guarded: T, or higher if it cannot hold")
    floor_kw: float | None = Field(description="active anti-backflow bound incl. buffer")
    ceiling_kw: float | None = Field(description="active over-demand bound incl. buffer")
    failsafe: bool


class ControlStatus(_Frozen):
    mode: Literal["enforce", "observe"] = Field(
        default="enforce", description="observe: setpoints are computed and reported, not written"
    )
    at: datetime | None = None
    cycle: int = 0
    failsafe: bool = False
    meters: tuple[MeterStatus, ...] = ()
    devices: tuple[DeviceStatus, ...] = ()


class ControlEvent(_Frozen):
    kind: EventKind
    at: datetime
    message: str
    meter_id: int | None = None
    device: tuple[DeviceKind, int] | None = None
