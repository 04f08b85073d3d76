"""The one plant stepper: a meter's plant state, the setpoints in force, and the meter's view.

The fakes (stepped lazily to an injected clock), the Modbus simulator (stepped by its own
loop) and the lab's closed loop (stepped once per control period) all hold a
:class:`PlantStepper` and differ only in *when* they call :meth:`PlantStepper.step`.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace

from gridguard.plant.model import (
    ChargerParams,
    PlantInputs,
    PlantParams,
    PlantSetpoints,
    PlantState,
    StorageParams,
    initial_state,
    measure,
    step,
)
from gridguard.site.topology import MeterBranch
from gridguard.vocab import DeviceKind

_FIELD: dict[DeviceKind, str] = {
    "storage": "storage_kw",
    "pv": "pv_limit_kw",
    "charger": "charger_limit_kw",
}


def plant_params(
    branch: MeterBranch, *, actuator_lag_s: float = 1.0, meter_noise_kw: float = 0.0
) -> PlantParams:
    """The plant of one meter's branch: its storage, PV and chargers as configured."""
    return PlantParams(
        storage=tuple(
            StorageParams(s.rated_kw, s.capacity_kwh, s.soc_min_pct, s.soc_max_pct, s.efficiency)
            for s in branch.storage
        ),
        pv_rated_kw=tuple(p.rated_kw for p in branch.pv),
        chargers=tuple(ChargerParams(c.rated_kw, c.min_kw) for c in branch.chargers),
        actuator_lag_s=actuator_lag_s,
        meter_noise_kw=meter_noise_kw,
    )


def resting_setpoints(params: PlantParams) -> PlantSetpoints:
    """What devices do before anyone writes: storage idle, PV and piles at their rating."""
    return PlantSetpoints(
        storage_kw=tuple(0.0 for _ in params.storage),
        pv_limit_kw=params.pv_rated_kw,
        charger_limit_kw=tuple(c.rated_kw for c in params.chargers),
    )


class PlantStepper:
    """One gateway meter's plant: ``step`` advances it under the setpoints last written."""

    def __init__(
        self,
        params: PlantParams,
        soc_pct: tuple[float, ...],
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.params = params
        self.rng = rng
        self.state: PlantState = initial_state(params, soc_pct)
        self.setpoints = resting_setpoints(params)

    def step(self, inputs: PlantInputs, dt_s: float) -> PlantState:
        """Advance ``dt_s`` seconds (one exact step) with the world ``inputs``."""
        self.state = step(self.params, self.state, inputs, self.setpoints, dt_s)
        return self.state

    def write(self, kind: DeviceKind, index: int, kw: float) -> None:
        """Change one setpoint: storage power (kW, + discharge) or a PV / pile limit (kW)."""
        field = _FIELD[kind]
        values = list(getattr(self.setpoints, field))
        values[index] = kw
        self.setpoints = replace(self.setpoints, **{field: tuple(values)})

    def apply(
        self,
        *,
        storage_kw: Sequence[float | None],
        pv_limit_kw: Sequence[float | None],
        charger_limit_kw: Sequence[float | None],
    ) -> None:
        """Write every given value; ``None`` keeps that device's setpoint."""

        def merge(old: tuple[float, ...], new: Sequence[float | None]) -> tuple[float, ...]:
            return tuple(o if n is None else n for o, n in zip(old, new, strict=True))

        s = self.setpoints
        self.setpoints = PlantSetpoints(
            storage_kw=merge(s.storage_kw, storage_kw),
            pv_limit_kw=merge(s.pv_limit_kw, pv_limit_kw),
            charger_limit_kw=merge(s.charger_limit_kw, charger_limit_kw),
        )

    def measure(self) -> tuple[float, float, float]:
        """Per-phase grid kW as the meter sees it now (with noise when the plant has some)."""
        return measure(self.params, self.state, self.rng)
