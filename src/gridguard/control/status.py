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
    "level_moved",
    "new_month_max",
    "cannot_hold_target",
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
    binding: str | None = Field(
        default=None, description="bound the grid sits at: anti-backflow, phase, over-demand"
    )
    binding_phase: str | None = Field(default=None, description="A/B/C when a phase binds")
    level_reason: str = Field(default="", description="why the guarded level is what it is")
    forecast_peak_kw: float | None = Field(default=None, description="next 24 h, net load")
    stored_kwh: float = Field(default=0.0, description="storage energy above soc_min")
    reserve_kwh: float | None = Field(default=None, description="energy kept for demand")
    rest_reason: str = Field(default="", description="the energy policy's resting mode")
    pv_kw: float = Field(default=0.0, description="PV delivered")
    pv_held_back_kw: float = Field(default=0.0, description="curtailment in force (upper bound)")
    window_running_kw: float = Field(default=0.0, description="15-min window so far (D17)")


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
