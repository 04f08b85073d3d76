"""``gridguard bench control``: the closed loop over every scenario x plant variant,
GridGuard vs a proportional baseline.

Each scenario runs at 1 s on the plant model with the imperfections its ``[plant]`` names
(actuator lag, what the controller is told of it, meter noise, meter and setpoint delays,
a tapering BMS), overridden by ``--plant KEY=VALUE``, and under each plant *variant*
(``VARIANTS``). The pure decision is driven synchronously (no asyncio per step). The
yardsticks come from two perfect-foresight LPs on 1-minute averages (``optimal.py``): the
least possible maximum demand, and the least PV curtailment that the bounds make necessary.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from gridguard.control.controller import MeterController
from gridguard.control.demand import DemandMeter
from gridguard.control.laws.overdemand import month_limit_kw
from gridguard.control.params import ControlTuning, MeterGoals, StrategyParams, goals_for_meter
from gridguard.control.view import ChargerRating, Command, MeterRatings, StorageRating
from gridguard.lab.baseline import ProportionalController
from gridguard.lab.closedloop import Decider, simulate
from gridguard.lab.optimal import (
    Trace,
    minute_means,
    necessary_curtailment_kwh,
    optimal_max_demand_kw,
)
from gridguard.lab.score import Floors, Progress, Score, Ticker
from gridguard.plant.model import PlantParams
from gridguard.plant.scenario import LabPlant, Scenario, load_scenario
from gridguard.site.config import ControlConfig
from gridguard.strategy.model import site_month

METER_ID = 1
SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"
LABELS = {"gridguard": "GridGuard", "baseline": "baseline P 20 %"}
KINDS = ("gridguard", "baseline")
VARIANTS: dict[str, dict[str, float]] = {
    "scenario": {},
    "lag 1 s": {"actuator_lag_s": 1.0, "assumed_lag_s": -1.0},
    "lag 2 s": {"actuator_lag_s": 2.0, "assumed_lag_s": -1.0},
    "lag 3 s": {"actuator_lag_s": 3.0, "assumed_lag_s": -1.0},
    "lag 2 s told 1 s": {"actuator_lag_s": 2.0, "assumed_lag_s": 1.0},
    "meter 1 cycle late": {"meter_delay_s": 1.0},
    "setpoints 1 cycle late": {"command_delay_s": 1.0},
    "noise 0.5 kW": {"meter_noise_kw": 0.5},
}
"""Plant variants: overrides applied on top of the scenario's ``[plant]`` (and ``--plant``)."""
KEYS = (
    "backflow_s",
    "backflow_s_outside",
    "phase_backflow_s",
    "phase_backflow_s_outside",
    "below_baseline_kwh",
    "max_backflow_kw",
    "worst_outside_kw",
    "max_demand_kw",
    "demand_limit_kw",
    "optimal_max_demand_kw",
    "demand_ratio",
    "pv_curtailed_kwh",
    "necessary_curtailment_kwh",
    "storage_full_cycles",
    "soc_at_peak_pct",
    "speedup",
)


def strategies(scn: Scenario) -> list[StrategyParams]:
    """The scenario's [strategy] (spec field names) for every device class it has (D7)."""
    s = scn.strategy
    types = [
        t for t, present in ((2, scn.storage), (3, scn.pv_rated_kw), (4, scn.chargers)) if present
    ]
    return [
        StrategyParams(
            meter_id=METER_ID,
            device_type=t,
            streaming_enabled=s.get("streaming_status", 2) == 1,
            streaming_kw=float(s.get("streaming_condition", 0)),
            phase_enabled=s.get("individual_phase_streaming_status", 2) == 1,
            phase_kw=float(s.get("individual_phase_streaming_condition", 0)),
            over_demand_enabled=s.get("over_demand_status", 2) == 1,
            over_demand_monthly_kw=tuple(int(v) for v in s.get("over_demand_condition", [0] * 12)),
            dynamic_enabled=s.get("dynamic_demand_status", 2) == 1,
            dynamic_pct=float(s.get("dynamic_demand_percentage", 100)),
        )
        for t in types
    ]


def plant_params(scn: Scenario, plant: LabPlant) -> PlantParams:
    storage = replace(scn.storage, bms_taper_pct=plant.bms_taper_pct) if scn.storage else None
    return PlantParams(
        storage=(storage,) if storage else (),
        pv_rated_kw=(scn.pv_rated_kw,) if scn.pv_rated_kw > 0 else (),
        chargers=scn.chargers,
        actuator_lag_s=plant.actuator_lag_s,
        meter_noise_kw=plant.meter_noise_kw,
        meter_delay_s=plant.meter_delay_s,
        command_delay_s=plant.command_delay_s,
    )


def ratings(scn: Scenario) -> MeterRatings:
    st = scn.storage
    return MeterRatings(
        storage=(
            StorageRating(
                st.power_kw, st.energy_kwh, st.soc_min_pct, st.soc_max_pct, st.efficiency
            ),
        )
        if st
        else (),
        chargers=tuple(
            ChargerRating(c.rated_kw, c.min_kw, 1 + i) for i, c in enumerate(scn.chargers)
        ),
    )


def controller(scn: Scenario, kind: str, plant: LabPlant) -> Decider:
    config = ControlConfig()
    if kind == "baseline":
        p = plant_params(scn, plant)
        resting = Command(
            tuple(0.0 for _ in p.storage), p.pv_rated_kw, tuple(c.rated_kw for c in p.chargers)
        )
        return ProportionalController(
            ratings=ratings(scn), config=config, zone=scn.zone, resting=resting
        )
    return MeterController(
        ratings=ratings(scn),
        config=config,
        tuning=ControlTuning(actuator_lag_s=plant.told_lag_s),
        zone=scn.zone,
    )


def goals_for(scn: Scenario) -> MeterGoals:
    return goals_for_meter(strategies(scn), METER_ID)


def variant_plant(scn: Scenario, variant: str, overrides: dict[str, str] | None = None) -> LabPlant:
    """The scenario's plant, then ``--plant`` overrides, then the variant's."""
    plant = scn.plant.with_values(overrides or {}, "--plant")
    return plant.with_values(VARIANTS[variant], f"variant {variant!r}")


def run_one(
    scn: Scenario,
    kind: str,
    *,
    plant: LabPlant | None = None,
    record: bool = False,
    progress: Progress | None = None,
) -> tuple[dict[str, Any], Score]:
    """Closed loop over the whole scenario with one controller; metrics without the LPs."""
    plant = plant or scn.plant
    config = ControlConfig()
    label = f"{scn.name} / {LABELS[kind]}"
    ticker = Ticker(label, scn.duration_s, progress) if progress else None
    g = goals_for(scn)
    st = scn.storage
    score = Score(
        floors=Floors(g.streaming_kw, g.phase_kw),
        settle_s=2 * config.period_s
        + plant.actuator_lag_s
        + plant.meter_delay_s
        + plant.command_delay_s,
        epoch_s=scn.start.timestamp(),
        meter=DemandMeter(
            window_s=config.demand_window_s, step_s=config.demand_step_s, zone=scn.zone
        ),
        usable_kwh=st.energy_kwh * (st.soc_max_pct - st.soc_min_pct) / 100.0 if st else 0.0,
        record=record,
        ticker=ticker,
    )
    params = plant_params(scn, plant)
    began = time.perf_counter()
    simulate(
        params,
        controller(scn, kind, plant),
        lambda _t: g,
        scn.inputs_at,
        seconds=scn.duration_s,
        start_epoch_s=scn.start.timestamp(),
        soc_pct=tuple(scn.soc_pct for _ in params.storage),
        on_step=score,
    )
    wall_s = time.perf_counter() - began
    if ticker is not None:
        ticker.done()
    return metrics(score, phase=g.phase_kw is not None) | {
        "speedup": round(scn.duration_s / wall_s)
    }, score


def metrics(score: Score, *, phase: bool) -> dict[str, Any]:
    """The run's figures, rounded for the table and JSON."""
    return {
        "backflow_s": score.backflow_s,
        "backflow_s_outside": score.after_s,
        "phase_backflow_s": list(score.phase_s) if phase else None,
        "phase_backflow_s_outside": list(score.phase_after_s) if phase else None,
        "below_baseline_kwh": round(score.below_kwh, 3),
        "max_backflow_kw": round(score.worst_kw, 2),
        "worst_outside_kw": round(score.worst_after_kw, 2),
        "max_demand_kw": round(score.meter.month_max_kw, 1),
        "pv_curtailed_kwh": round(score.curtailed_kwh, 1),
        "storage_full_cycles": round(score.full_cycles, 2),
        "soc_at_peak_pct": None
        if score.soc_at_peak_pct is None
        else round(score.soc_at_peak_pct, 1),
    }


def minute_trace(scn: Scenario) -> Trace:
    load, pv = scn.per_second()
    return Trace(minute_means(load), minute_means(pv), minute_means(scn.min_phase_per_second()))


def yardsticks(scn: Scenario) -> dict[str, float]:
    """The LP optimum of the maximum demand, the limit, and the necessary curtailment."""
    trace = minute_trace(scn)
    g = goals_for(scn)
    baseline = g.streaming_kw if g.streaming_kw is not None else 0.0
    optimum = optimal_max_demand_kw(
        trace.net_load_kw,
        trace.pv_kw,
        scn.storage,
        soc_pct=scn.soc_pct,
        baseline_kw=baseline,
        min_phase_kw=trace.min_phase_kw,
        phase_kw=g.phase_kw,
    )
    limit = limit_kw(scn)
    necessary = necessary_curtailment_kwh(
        trace,
        scn.storage,
        soc_pct=scn.soc_pct,
        baseline_kw=g.streaming_kw,
        phase_kw=g.phase_kw,
        demand_cap_kw=max(optimum, limit) + 0.05,
    )
    return {
        "demand_limit_kw": limit,
        "optimal_max_demand_kw": round(optimum, 1),
        "necessary_curtailment_kwh": round(necessary, 1),
    }


def limit_kw(scn: Scenario) -> float:
    monthly = tuple(int(v) for v in scn.strategy.get("over_demand_condition", [0] * 12))
    return month_limit_kw(monthly, site_month(scn.start, scn.zone))


def with_yardsticks(row: dict[str, Any], sticks: dict[str, float]) -> dict[str, Any]:
    """A run's metrics with the LP figures and the demand ratio, in ``KEYS`` order."""
    full = row | sticks
    full["demand_ratio"] = round(
        row["max_demand_kw"] / max(sticks["optimal_max_demand_kw"], sticks["demand_limit_kw"]), 3
    )
    return {k: full[k] for k in KEYS}


def bench_scenario(
    scn: Scenario,
    variants: list[str] | None = None,
    *,
    overrides: dict[str, str] | None = None,
    progress: Progress | None = None,
) -> dict[str, dict[str, Any]]:
    """Both controllers on one scenario under each variant: {variant: {kind: row}}."""
    began = time.perf_counter()
    sticks = yardsticks(scn)
    if progress:
        progress(f"{scn.name} / LPs: finished in {time.perf_counter() - began:.1f} s")
    out: dict[str, dict[str, Any]] = {}
    for variant in variants or list(VARIANTS):
        plant = variant_plant(scn, variant, overrides)
        out[variant] = {
            kind: with_yardsticks(run_one(scn, kind, plant=plant, progress=progress)[0], sticks)
            for kind in KINDS
        }
    return out


def scenario_paths(given: list[Path] | None) -> list[Path]:
    return list(given) if given else sorted(SCENARIO_DIR.glob("*.toml"))


def run_bench(paths: list[Path], variants: list[str] | None = None) -> dict[str, Any]:
    return {load_scenario(p).name: bench_scenario(load_scenario(p), variants) for p in paths}
