"""status/post of a simulated EMS, written as JSON text directly.

The shape is the edge agent's (``type``, ``device_uid``, ``timestamp``, then the control
status: ``at``, ``cycle``, ``failsafe``, ``meters``, ``devices``; see
``gridguard.control.status``). A fleet of 10,000 sends 5,000 of these a second, and building
dicts for ``json.dumps`` (with a ``round`` per number) cost three times the formatting below.
Every value is a finite number, a boolean or null, and the keys are fixed, so the text is JSON
by construction; the tests parse it back into :class:`ControlStatus`.
"""

from __future__ import annotations

import json

from gridguard.protocol.timefmt import format_time_ns
from gridguard.sim.fleet_plant import MeterState, MeterStep
from gridguard.sim.fleet_site import MeterShape

NS_PER_MS = 1_000_000


def _kw(value: float | None) -> str:
    return "null" if value is None else f"{value:.2f}"


def meter_json(meter_id: int, step: MeterStep, state: MeterState) -> str:
    """One entry of ``meters`` (the control engine's MeterStatus)."""
    phases = step.phase_power_kw
    phase_text = "null" if phases is None else f"[{phases[0]:.2f},{phases[1]:.2f},{phases[2]:.2f}]"
    target = _kw(step.target_kw)
    return (
        f'{{"meter_id":{meter_id},"grid_power_kw":{step.grid_power_kw:.2f},'
        f'"phase_power_kw":{phase_text},"demand_kw":{state.demand_kw:.2f},'
        f'"dynamic_demand_kw":{round(state.peak_kw)},"target_kw":{target},'
        f'"shave_kw":{target},"floor_kw":{_kw(step.floor_kw)},"ceiling_kw":{target},'
        '"failsafe":false}'
    )


def device_json(shape: MeterShape, step: MeterStep, state: MeterState) -> list[str]:
    """The entries of ``devices`` behind one meter (the control engine's DeviceStatus)."""
    out = []
    for unit, share in zip(shape.units, shape.shares, strict=True):
        soc = "null"
        if unit.kind == "storage":
            power = setpoint = f"{step.storage_kw * share:.2f}"
            soc = f"{state.soc_pct:.1f}"
        elif unit.kind == "pv":
            power = f"{step.pv_kw * share:.2f}"
            setpoint = "null" if step.pv_limit_kw is None else f"{step.pv_limit_kw * share:.2f}"
        else:
            limit = step.charger_limit_kw
            power = f"{step.charger_kw * share:.2f}"
            setpoint = "null" if limit is None else f"{limit * share:.2f}"
        out.append(
            f'{{"kind":"{unit.kind}","id":{unit.id},"meter_id":{shape.id},"online":true,'
            f'"power_kw":{power},"setpoint_kw":{setpoint},"soc_pct":{soc}}}'
        )
    return out


def status_json(uid: str, now_ns: int, meters: list[str], devices: list[str]) -> bytes:
    """The whole status/post payload."""
    return (
        f'{{"type":"streaming_overdemand_status","device_uid":{json.dumps(uid)},'
        f'"timestamp":{now_ns // NS_PER_MS},"at":"{format_time_ns(now_ns)}","cycle":0,'
        f'"failsafe":false,"meters":[{",".join(meters)}],"devices":[{",".join(devices)}]}}'
    ).encode()
