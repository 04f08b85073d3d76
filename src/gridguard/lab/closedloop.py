"""The closed loop without asyncio: plant model -> readings -> decide -> setpoints, per period.

For closed-loop tests and the bench: the pure decision of :class:`MeterController` is driven
synchronously with the plant at the control period (1 s by default), so a simulated month runs in
seconds. The controller sees only what the fakes would report: the (noisy) meter, each
device's present output, limits and SOC, and the time.

Latency lives here, not in the laws: with ``meter_delay_s`` the controller gets the meter
reading of that many seconds ago (a gateway polling an RS-485 meter, a meter averaging over
its own second) next to the devices' present readings; with ``command_delay_s`` a written
setpoint reaches the device that much later (a queue per cycle, rounded to whole periods).
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

from gridguard.control.controller import Decision
from gridguard.control.params import MeterGoals
from gridguard.control.view import Command, MeterView
from gridguard.devices.fakes import storage_reading
from gridguard.devices.protocols import ChargerReading, MeterReading, PvReading
from gridguard.plant.model import PlantInputs, PlantParams, PlantState
from gridguard.plant.stepper import PlantStepper


class Decider(Protocol):
    def decide(
        self, view: MeterView, goals: MeterGoals, mono_s: float, epoch_s: float
    ) -> Decision: ...


StepHook = Callable[[int, PlantInputs, PlantState, Decision], None]


def plant_view(plant: PlantStepper, inputs: PlantInputs) -> MeterView:
    """What the meter and the devices report for the plant's present state."""
    params, state, setpoints = plant.params, plant.state, plant.setpoints
    phases = plant.measure()
    return MeterView(
        meter=MeterReading(grid_power_kw=phases[0] + phases[1] + phases[2], phase_power_kw=phases),
        storage=tuple(
            storage_reading(p, kw, soc)
            for p, kw, soc in zip(
                params.storage, state.storage_power_kw, state.storage_soc_pct, strict=True
            )
        ),
        pv=tuple(
            PvReading(power_kw=kw, limit_kw=limit, rated_kw=rated)
            for kw, limit, rated in zip(
                state.pv_power_kw, setpoints.pv_limit_kw, params.pv_rated_kw, strict=True
            )
        ),
        chargers=tuple(
            ChargerReading(power_kw=kw, limit_kw=limit, connected=demand > 0.0)
            for kw, limit, demand in zip(
                state.charger_power_kw,
                setpoints.charger_limit_kw,
                inputs.charger_demand_kw,
                strict=True,
            )
        ),
    )


def simulate(
    params: PlantParams,
    controller: Decider,
    goals: Callable[[int], MeterGoals],
    inputs_at: Callable[[int], PlantInputs],
    *,
    seconds: int,
    start_epoch_s: float,
    soc_pct: tuple[float, ...],
    seed: int = 1,
    on_step: StepHook | None = None,
    period_s: float = 1.0,
) -> PlantState:
    """Run ``seconds`` of cycles every ``period_s``; call ``on_step`` after each decision.

    ``goals``, ``inputs_at`` and ``on_step`` get the cycle index (= seconds at 1 s); the
    controller's period must match ``period_s``.
    """
    rng = random.Random(seed) if params.meter_noise_kw > 0.0 else None  # noqa: S311 - noise
    plant = PlantStepper(params, soc_pct, rng=rng)
    meter_lag = round(params.meter_delay_s / period_s)
    command_lag = round(params.command_delay_s / period_s)
    meters: deque[MeterReading] = deque(maxlen=meter_lag + 1)
    commands: deque[Command] = deque()
    for t in range(round(seconds / period_s)):
        inputs = inputs_at(t)
        state = plant.step(inputs, period_s)
        view = plant_view(plant, inputs)
        meters.append(view.meter)
        if meter_lag:
            view = replace(view, meter=meters[0])
        now_s = t * period_s
        decision = controller.decide(view, goals(t), now_s, start_epoch_s + now_s)
        commands.append(decision.command)
        if len(commands) > command_lag:
            command = commands.popleft()
            plant.apply(
                storage_kw=command.storage_kw,
                pv_limit_kw=command.pv_limit_kw,
                charger_limit_kw=command.charger_limit_kw,
            )
        if on_step is not None:
            on_step(t, inputs, state, decision)
    return plant.state
