"""The bench's yardsticks: the LP optimum, the scenario files, the baseline controller."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from gridguard.lab.bench import SCENARIO_DIR, goals_for, limit_kw, strategies
from gridguard.lab.optimal import minute_means, optimal_max_demand_kw
from gridguard.lab.report import main
from gridguard.lab.score import Ticker
from gridguard.plant.model import StorageParams
from gridguard.plant.scenario import ScenarioError, load_scenario

pytestmark = pytest.mark.unit

LOSSLESS = StorageParams(
    power_kw=250.0, energy_kwh=100.0, soc_min_pct=0.0, soc_max_pct=100.0, efficiency=1.0
)


def plateau(height_kw: float, minutes: int = 240) -> np.ndarray:
    return np.concatenate([np.full(60, 300.0), np.full(minutes, height_kw), np.full(60, 300.0)])


@pytest.mark.parametrize(
    ("load", "storage", "soc", "expected_kw"),
    [
        # no battery: the highest 15-minute average of the load itself
        (plateau(500.0), None, 0.0, 500.0),
        # 100 kWh spread over a 4 h plateau: 500 - 100 / 4 = 475
        (plateau(500.0), LOSSLESS, 100.0, 475.0),
        # half full, but the hour before the peak refills it below the level: still 475
        (plateau(500.0), LOSSLESS, 50.0, 475.0),
        # power-bound: a 15 min spike of 900 with 250 kW of inverter -> 650
        (plateau(900.0, minutes=15), LOSSLESS, 100.0, 650.0),
    ],
    ids=["no-battery", "energy-bound", "refilled-before-peak", "power-bound"],
)
def test_optimum_matches_hand_calculation(
    load: np.ndarray, storage: StorageParams | None, soc: float, expected_kw: float
) -> None:
    got = optimal_max_demand_kw(load, np.zeros(len(load)), storage, soc_pct=soc, baseline_kw=0.0)
    assert got == pytest.approx(expected_kw, abs=0.05)


def test_optimum_respects_the_baseline_and_efficiency() -> None:
    """With losses the battery delivers sqrt(0.81) of its cells; export is never allowed."""
    lossy = StorageParams(250.0, 100.0, 0.0, 100.0, efficiency=0.81)
    load = plateau(500.0)
    got = optimal_max_demand_kw(load, np.zeros(len(load)), lossy, soc_pct=100.0, baseline_kw=0.0)
    assert got == pytest.approx(500.0 - 100.0 * math.sqrt(0.81) / 4, abs=0.05)


def test_minute_means() -> None:
    assert minute_means(np.arange(130.0)).tolist() == [29.5, 89.5]


def test_shipped_scenarios_load_and_map_to_strategies() -> None:
    """Every shipped scenario reads; its [strategy] maps to one StrategyParams per class."""
    paths = sorted(SCENARIO_DIR.glob("*.toml"))
    assert {p.stem for p in paths} >= {
        "factory_day",
        "unbalanced_day",
        "month_peak_covered",
        "month_peak_uncovered",
    }
    for path in paths:
        scn = load_scenario(path)
        assert scn.duration_s >= 86400
        assert limit_kw(scn) > 0
        assert {s.device_type for s in strategies(scn)} >= {2, 3}
    unbalanced = load_scenario(SCENARIO_DIR / "unbalanced_day.toml")
    assert goals_for(unbalanced).phase_kw == 0.0
    noon = unbalanced.inputs_at(12 * 3600)
    assert noon.load_phase_kw[0] < noon.load_phase_kw[1]


def test_scenario_interpolates_pv_and_holds_load(tmp_path: Path) -> None:
    """Loads switch (held between samples); PV is smooth (linear)."""
    (tmp_path / "t.csv").write_text("seconds,load_kw,pv_kw\n0,90,0\n10,30,100\n20,30,100\n")
    (tmp_path / "t.toml").write_text(
        'trace = "t.csv"\nstart = "2024-06-01T00:00:00+08:00"\n[pv]\nrated_kw = 100\n'
    )
    scn = load_scenario(tmp_path / "t.toml")
    at5 = scn.inputs_at(5)
    assert at5.load_phase_kw == (30.0, 30.0, 30.0)
    assert at5.pv_available_kw == (50.0,)
    assert scn.duration_s == 30  # each sample stands for one step


def test_scenario_errors_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text('trace = "missing.csv"\nstart = "2024-06-01T00:00:00"\n')
    with pytest.raises(ScenarioError, match=r"bad\.toml"):
        load_scenario(tmp_path / "bad.toml")


def test_progress_every_ten_percent_then_finished() -> None:
    """A run reports started, each 10 % of its steps once, and finished (no 100 % line)."""
    lines: list[str] = []
    ticker = Ticker("day / GridGuard", 95, lines.append)
    due = ticker.due
    for t in range(95):
        if t >= due:
            due = ticker.tick(t)
    ticker.done()
    assert lines[0] == "day / GridGuard: started, 95 steps"
    shares = [int(line.split(": ")[1].split("%")[0]) for line in lines[1:-1]]
    assert shares == [10, 20, 30, 40, 50, 60, 70, 80, 90]
    assert lines[-1].startswith("day / GridGuard: finished in ")


def test_bench_output_is_the_json_alone_progress_elsewhere(tmp_path: Path) -> None:
    """stdout gets the JSON object only; progress (both controllers, the LP) goes aside."""
    rows = "".join(f"{t},{300 if t < 150 else 100},{150}\n" for t in range(300))
    (tmp_path / "tiny.csv").write_text("seconds,load_kw,pv_kw\n" + rows)
    (tmp_path / "tiny.toml").write_text(
        'trace = "tiny.csv"\nstart = "2024-06-01T00:00:00+08:00"\n'
        "[storage]\npower_kw = 100\nenergy_kwh = 200\n[pv]\nrated_kw = 200\n"
        "[strategy]\nstreaming_status = 1\nstreaming_condition = 0\n"
    )
    out: list[str] = []
    progress: list[str] = []
    main(
        [tmp_path / "tiny.toml"],
        as_json=True,
        out=out.append,
        progress=progress.append,
        variants=["scenario"],
        workers=1,
    )
    assert len(out) == 1
    result = json.loads(out[0])
    assert set(result) == {"tiny"}
    assert set(result["tiny"]["scenario"]) == {"gridguard", "baseline"}
    for who in ("GridGuard", "baseline P 20 %"):
        mine = [line for line in progress if line.startswith(f"tiny / {who}: ")]
        assert mine[0].endswith("started, 300 steps")
        assert len(mine) == 11  # started, 10 % .. 90 %, finished
        assert "finished in" in mine[-1]
    assert any(line.startswith("tiny / LPs: finished in") for line in progress)
