"""Assemble the frozen status snapshot from one cycle's views and decisions."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime

from gridguard.control.controller import Decision
from gridguard.control.status import ControlStatus, DeviceStatus, MeterStatus
from gridguard.control.view import MeterView
from gridguard.site.config import SiteConfig
from gridguard.vocab import DeviceKind

KW_DIGITS = 2


def _round_soc(soc_pct: float | None) -> float | None:
    return None if soc_pct is None else round(soc_pct, 1)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _r(value: float | None) -> float | None:
    """kW rounded to the meter's resolution (0.01 kW): no float noise on the wire."""
    return None if value is None else round(value, KW_DIGITS)


def _meter_status(meter_id: int, view: MeterView, d: Decision, reason: str) -> MeterStatus:
    valid = view.meter.valid
    phases = view.meter.phase_power_kw
    e = d.explain
    return MeterStatus(
        meter_id=meter_id,
        grid_power_kw=_r(view.meter.grid_power_kw) if valid else None,
        phase_power_kw=(
            (round(phases[0], KW_DIGITS), round(phases[1], KW_DIGITS), round(phases[2], KW_DIGITS))
            if valid and phases is not None
            else None
        ),
        demand_kw=round(d.demand_kw, KW_DIGITS),
        demand_partial=d.demand_partial,
        dynamic_demand_kw=round(d.dynamic_demand_kw),
        target_kw=_r(d.target_kw),
        shave_kw=_r(d.shave_kw),
        floor_kw=_r(_finite(d.bounds.floor_kw)),
        ceiling_kw=_r(_finite(d.bounds.ceiling_kw)),
        failsafe=d.failsafe,
        reason=reason,
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
    reasons: Mapping[int, str] | None = None,
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
                        power_kw=round(float(getattr(reading, "power_kw", 0.0)), KW_DIGITS),
                        setpoint_kw=_r(setpoints.get(ref.key)),
                        soc_pct=_round_soc(getattr(reading, "soc_pct", None)),
                    )
                )
    return ControlStatus(
        at=at,
        cycle=cycle,
        failsafe=any(d.failsafe for d in decisions.values()),
        meters=tuple(
            _meter_status(m, views[m], d, (reasons or {}).get(m, "")) for m, d in decisions.items()
        ),
        devices=tuple(devices),
    )
