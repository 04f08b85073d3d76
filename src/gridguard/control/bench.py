"""``gridguard bench control``: the closed loop over every scenario, GridGuard vs a baseline.

Each scenario runs at 1 s on the plant model (actuator lag 1 s, meter noise 0.2 kW per
phase), driving the pure decision synchronously (no asyncio per step). Per scenario it
reports the keys below for GridGuard, and the same for the proportional baseline; the
optimum comes from a perfect-foresight LP on 1-minute averages (``optimal.py``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gridguard.control.baseline import ProportionalController
from gridguard.control.closedloop import Decider, simulate
from gridguard.control.controller import Decision, MeterController
from gridguard.control.demand import DemandMeter
from gridguard.control.optimal import minute_means, optimal_max_demand_kw
from gridguard.control.overdemand import month_limit_kw
from gridguard.control.params import ControlTuning, MeterGoals, StrategyParams, goals_for_meter
from gridguard.control.view import ChargerRating, Command, MeterRatings, StorageRating
from gridguard.sim.plant import PlantInputs, PlantParams, PlantState
from gridguard.sim.scenario import Scenario, load_scenario
from gridguard.siteconfig import ControlConfig

LAG_S = 1.0
NOISE_KW = 0.2  # per phase; the 2 kW buffer must be >= ~5 sigma of the total (D20)
METER_ID = 1
DISTURBANCE_KW = 0.5  # a step of the uncontrolled net load bigger than this in 1 s
SCENARIO_DIR = Path(__file__).resolve().parents[3] / "bench" / "scenarios"
KEYS = (
    "backflow_s",
    "backflow_s_after_2_cycles",
    "max_backflow_kw",
    "max_demand_kw",
    "demand_limit_kw",
    "optimal_max_demand_kw",
    "demand_ratio",
    "pv_curtailed_kwh",
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


def plant_params(scn: Scenario) -> PlantParams:
    return PlantParams(
        storage=(scn.storage,) if scn.storage else (),
        pv_rated_kw=(scn.pv_rated_kw,) if scn.pv_rated_kw > 0 else (),
        chargers=scn.chargers,
        actuator_lag_s=LAG_S,
        meter_noise_kw=NOISE_KW,
    )


def ratings(scn: Scenario) -> MeterRatings:
    st = scn.storage
    return MeterRatings(
        storage=(StorageRating(st.power_kw, st.energy_kwh, st.soc_min_pct, st.soc_max_pct),)
        if st
        else (),
        chargers=tuple(
            ChargerRating(c.rated_kw, c.min_kw, 1 + i) for i, c in enumerate(scn.chargers)
        ),
    )


def controller(scn: Scenario, kind: str) -> Decider:
    config = ControlConfig()
    if kind == "baseline":
        p = plant_params(scn)
        resting = Command(
            tuple(0.0 for _ in p.storage), p.pv_rated_kw, tuple(c.rated_kw for c in p.chargers)
        )
        return ProportionalController(
            ratings=ratings(scn), config=config, zone=scn.zone, resting=resting
        )
    eff = scn.storage.efficiency if scn.storage else 0.92
    return MeterController(
        ratings=ratings(scn),
        config=config,
        tuning=ControlTuning(actuator_lag_s=LAG_S, storage_efficiency=eff),
        zone=scn.zone,
    )


@dataclass
class Score:
    """Metrics accumulated step by step (the per-step path stays lean)."""

    baseline_kw: float
    settle_s: float
    epoch_s: float
    meter: DemandMeter
    backflow_s: int = 0
    after_s: int = 0
    worst_kw: float = 0.0
    curtailed_kwh: float = 0.0
    _last_exo: float = 0.0
    _disturbed_at: float = -1e9
    samples: list[tuple[float, ...]] = field(default_factory=list)
    record: bool = False
    step_kw: float = DISTURBANCE_KW

    def __call__(self, t: int, i: PlantInputs, s: PlantState, d: Decision) -> None:
        a, b, c = s.grid_phase_kw
        grid = a + b + c
        avail = sum(i.pv_available_kw)
        exo = sum(i.load_phase_kw) - avail + sum(i.charger_demand_kw)
        if abs(exo - self._last_exo) > self.step_kw:
            self._disturbed_at = t
        self._last_exo = exo
        if grid < self.baseline_kw:
            self.backflow_s += 1
            self.worst_kw = max(self.worst_kw, self.baseline_kw - grid)
            if t > self._disturbed_at + self.settle_s:
                self.after_s += 1
        self.meter.add(grid, 1.0, self.epoch_s + t)
        self.curtailed_kwh += (avail - sum(s.pv_power_kw)) / 3600.0
        if self.record and t % 60 == 0:
            self.samples.append(
                (
                    t,
                    grid,
                    sum(s.storage_power_kw),
                    sum(s.pv_power_kw),
                    avail,
                    self.meter.demand_kw,
                    d.target_kw or 0.0,
                    d.shave_kw or 0.0,
                )
            )


def goals_for(scn: Scenario) -> MeterGoals:
    return goals_for_meter(strategies(scn), METER_ID)


def run_one(scn: Scenario, kind: str, *, record: bool = False) -> tuple[dict[str, float], Score]:
    """Closed loop over the whole scenario with one controller; metrics without the optimum."""
    config = ControlConfig()
    g = goals_for(scn)
    score = Score(
        baseline_kw=g.streaming_kw if g.streaming_kw is not None else 0.0,
        settle_s=2 * config.period_s + LAG_S,
        epoch_s=scn.start.timestamp(),
        meter=DemandMeter(
            window_s=config.demand_window_s, step_s=config.demand_step_s, zone=scn.zone
        ),
        record=record,
    )
    params = plant_params(scn)
    began = time.perf_counter()
    simulate(
        params,
        controller(scn, kind),
        lambda _t: g,
        scn.inputs_at,
        seconds=scn.duration_s,
        start_epoch_s=scn.start.timestamp(),
        soc_pct=tuple(scn.soc_pct for _ in params.storage),
        on_step=score,
    )
    wall_s = time.perf_counter() - began
    return {
        "backflow_s": score.backflow_s,
        "backflow_s_after_2_cycles": score.after_s,
        "max_backflow_kw": round(score.worst_kw, 2),
        "max_demand_kw": round(score.meter.month_max_kw, 1),
        "pv_curtailed_kwh": round(score.curtailed_kwh, 1),
        "speedup": round(scn.duration_s / wall_s),
    }, score


def optimum_kw(scn: Scenario) -> float:
    load, pv = scn.per_second()
    g = goals_for(scn)
    return optimal_max_demand_kw(
        minute_means(load),
        minute_means(pv),
        scn.storage,
        soc_pct=scn.soc_pct,
        baseline_kw=g.streaming_kw if g.streaming_kw is not None else 0.0,
    )


def limit_kw(scn: Scenario) -> float:
    monthly = tuple(int(v) for v in scn.strategy.get("over_demand_condition", [0] * 12))
    return month_limit_kw(monthly, scn.start.astimezone(scn.zone).month)


def bench_scenario(scn: Scenario, *, record: bool = False) -> tuple[dict[str, Any], Score]:
    """Both controllers on one scenario, with the optimum and the ratio filled in."""
    optimum = optimum_kw(scn)
    limit = limit_kw(scn)
    out: dict[str, Any] = {}
    kept: Score | None = None
    for kind in ("gridguard", "baseline"):
        metrics, score = run_one(scn, kind, record=record and kind == "gridguard")
        kept = kept or score
        metrics |= {
            "demand_limit_kw": limit,
            "optimal_max_demand_kw": round(optimum, 1),
            "demand_ratio": round(metrics["max_demand_kw"] / max(optimum, limit), 3),
        }
        row = {k: metrics[k] for k in KEYS}
        if kind == "gridguard":
            out |= row
        else:
            out["baseline"] = row
    assert kept is not None
    return out, kept


def scenario_paths(given: list[Path] | None) -> list[Path]:
    return list(given) if given else sorted(SCENARIO_DIR.glob("*.toml"))


def run_bench(paths: list[Path]) -> dict[str, dict[str, Any]]:
    return {load_scenario(p).name: bench_scenario(load_scenario(p))[0] for p in paths}
