"""Assemble the frozen status snapshot from one cycle's views and decisions."""

from __future__ import annotations

import math
from datetime import datetime

from gridguard.control.controller import Decision
from gridguard.control.status import ControlStatus, DeviceStatus, MeterStatus
from gridguard.control.view import MeterView
from gridguard.site.config import SiteConfig
from gridguard.vocab import DeviceKind


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _meter_status(meter_id: int, view: MeterView, d: Decision) -> MeterStatus:
    valid = view.meter.valid
    e = d.explain
    return MeterStatus(
        meter_id=meter_id,
        grid_power_kw=view.meter.grid_power_kw if valid else None,
        phase_power_kw=view.meter.phase_power_kw if valid else None,
        demand_kw=d.demand_kw,
        dynamic_demand_kw=round(d.dynamic_demand_kw),
        target_kw=d.target_kw,
        shave_kw=d.shave_kw,
        floor_kw=_finite(d.bounds.floor_kw),
        ceiling_kw=_finite(d.bounds.ceiling_kw),
        failsafe=d.failsafe,
        binding=e.binding,
        binding_phase=e.binding_phase,
        level_reason=e.level_reason,
        forecast_peak_kw=e.forecast_peak_kw,
        stored_kwh=round(e.stored_kwh, 2),
        reserve_kwh=None if e.reserve_kwh is None else round(e.reserve_kwh, 2),
        rest_reason=e.rest_reason,
        pv_kw=e.pv_kw,
        pv_held_back_kw=e.pv_held_back_kw,
        window_running_kw=e.window_running_kw,
    )


def build_status(
    site: SiteConfig,
    views: dict[int, MeterView],
    decisions: dict[int, Decision],
    setpoints: dict[tuple[DeviceKind, int], float],
    *,
    at: datetime,
    cycle: int,
) -> ControlStatus:
    devices: list[DeviceStatus] = []
    for meter_id, view in views.items():
        branch = site.topology.by_meter[meter_id]
        readings: dict[DeviceKind, tuple[object, ...]] = {
            "storage": view.storage,
            "pv": view.pv,
            "charger": view.chargers,
        }
        for kind, of_kind in readings.items():
            for ref, reading in zip(branch.refs(kind), of_kind, strict=True):
                devices.append(
                    DeviceStatus(
                        kind=kind,
                        id=ref.id,
                        meter_id=meter_id,
                        online=bool(getattr(reading, "online", True)),
                        power_kw=float(getattr(reading, "power_kw", 0.0)),
                        setpoint_kw=setpoints.get(ref.key),
                        soc_pct=getattr(reading, "soc_pct", None),
                    )
                )
    return ControlStatus(
        at=at,
        cycle=cycle,
        failsafe=any(d.failsafe for d in decisions.values()),
        meters=tuple(_meter_status(m, views[m], d) for m, d in decisions.items()),
        devices=tuple(devices),
    )
