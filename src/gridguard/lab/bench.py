"""``gridguard bench control``: the closed loop over every scenario, GridGuard vs a baseline.

Each scenario runs at 1 s on the plant model (actuator lag 1 s, meter noise 0.2 kW per
phase), driving the pure decision synchronously (no asyncio per step). Per scenario it
reports the keys below for GridGuard, and the same for the proportional baseline; the
optimum comes from a perfect-foresight LP on 1-minute averages (``optimal.py``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gridguard.control.controller import Decision, MeterController
from gridguard.control.demand import DemandMeter
from gridguard.control.laws.overdemand import month_limit_kw
from gridguard.control.params import ControlTuning, MeterGoals, StrategyParams, goals_for_meter
from gridguard.control.view import ChargerRating, Command, MeterRatings, StorageRating
from gridguard.lab.baseline import ProportionalController
from gridguard.lab.closedloop import Decider, simulate
from gridguard.lab.optimal import minute_means, optimal_max_demand_kw
from gridguard.plant.model import PlantInputs, PlantParams, PlantState
from gridguard.plant.scenario import Scenario, load_scenario
from gridguard.site.config import ControlConfig
from gridguard.strategy.model import site_month

LAG_S = 1.0
NOISE_KW = 0.2  # per phase; the 2 kW buffer must be >= ~5 sigma of the total (D20)
METER_ID = 1
DISTURBANCE_KW = 0.5  # a step of the uncontrolled net load bigger than this in 1 s
SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"
LABELS = {"gridguard": "GridGuard", "baseline": "baseline P 20 %"}
Progress = Callable[[str], None]
"""Where progress lines go (stderr in the CLI); the table or JSON alone goes to stdout."""
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
    return MeterController(
        ratings=ratings(scn),
        config=config,
        tuning=ControlTuning(actuator_lag_s=LAG_S),
        zone=scn.zone,
    )


class Ticker:
    """Progress of one closed-loop run: a line every ``every_pct`` % of the steps."""

    def __init__(self, label: str, total_steps: int, out: Progress, every_pct: int = 10) -> None:
        self.label = label
        self.total = max(total_steps, 1)
        self.out = out
        self.every_pct = every_pct
        self.began = time.perf_counter()
        self.due = self._step_reaching(every_pct)
        out(f"{label}: started, {total_steps} steps")

    def _step_reaching(self, pct: int) -> int:
        """Index of the step whose end completes ``pct`` % (no report at 100: ``done``)."""
        return -(-self.total * pct // 100) - 1 if pct < 100 else sys.maxsize

    def tick(self, t: int) -> int:
        """Step ``t`` completed a share that is due: report it; the next step due."""
        pct = (t + 1) * 100 // self.total
        self.out(f"{self.label}: {pct:3d} % ({time.perf_counter() - self.began:.1f} s)")
        self.due = self._step_reaching((pct // self.every_pct + 1) * self.every_pct)
        return self.due

    def done(self) -> None:
        self.out(f"{self.label}: finished in {time.perf_counter() - self.began:.1f} s")


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
    ticker: Ticker | None = None
    _next_tick: int = sys.maxsize  # one integer compare per step: progress costs nothing

    def __post_init__(self) -> None:
        if self.ticker is not None:
            self._next_tick = self.ticker.due

    def __call__(self, t: int, i: PlantInputs, s: PlantState, d: Decision) -> None:
        if t >= self._next_tick and self.ticker is not None:
            self._next_tick = self.ticker.tick(t)
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


def run_one(
    scn: Scenario, kind: str, *, record: bool = False, progress: Progress | None = None
) -> tuple[dict[str, float], Score]:
    """Closed loop over the whole scenario with one controller; metrics without the optimum."""
    config = ControlConfig()
    label = f"{scn.name} / {LABELS[kind]}"
    ticker = Ticker(label, scn.duration_s, progress) if progress else None
    g = goals_for(scn)
    score = Score(
        baseline_kw=g.streaming_kw if g.streaming_kw is not None else 0.0,
        settle_s=2 * config.period_s + LAG_S,
        epoch_s=scn.start.timestamp(),
        meter=DemandMeter(
            window_s=config.demand_window_s, step_s=config.demand_step_s, zone=scn.zone
        ),
        record=record,
        ticker=ticker,
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
    if ticker is not None:
        ticker.done()
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
    return month_limit_kw(monthly, site_month(scn.start, scn.zone))


def bench_scenario(
    scn: Scenario, *, record: bool = False, progress: Progress | None = None
) -> tuple[dict[str, Any], Score]:
    """Both controllers on one scenario, with the optimum and the ratio filled in."""
    began = time.perf_counter()
    optimum = optimum_kw(scn)
    if progress:
        progress(f"{scn.name} / optimum (LP): finished in {time.perf_counter() - began:.1f} s")
    limit = limit_kw(scn)
    out: dict[str, Any] = {}
    kept: Score | None = None
    for kind in ("gridguard", "baseline"):
        metrics, score = run_one(
            scn, kind, record=record and kind == "gridguard", progress=progress
        )
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
