"""Closed-loop control bench: prints the table of ``gridguard bench control`` and redraws
docs/control-day.png (a hard day: the measured broken-cumulus day).

    .venv/bin/python bench/control.py [--json] [--no-chart] [--all-variants] [SCENARIO.toml ...]

By default the day scenarios run under the scenario's own plant (lag 1 s) and the variants
``DAY_VARIANTS``, the longer ones under their own plant only (a month costs minutes per run);
``--all-variants`` runs every variant everywhere. The JSON goes to docs/control-bench.json as well.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from gridguard.lab.bench import SCENARIO_DIR, VARIANTS, scenario_paths
from gridguard.lab.report import chart, run_all, table, to_stderr
from gridguard.plant.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
SHORT_S = 86400
DAY_VARIANTS = [
    "scenario",
    "lag 3 s",
    "lag 2 s told 1 s",
    "meter 1 cycle late",
    "setpoints 1 cycle late",
    "noise 0.5 kW",
]


if __name__ == "__main__":
    args = sys.argv[1:]
    paths = scenario_paths([Path(a) for a in args if not a.startswith("--")] or None)
    everywhere = "--all-variants" in args
    plan = {
        p: list(VARIANTS) if everywhere or load_scenario(p).duration_s <= SHORT_S else ["scenario"]
        for p in paths
    }
    results = run_all(paths, plan, progress=to_stderr)
    (ROOT / "docs" / "control-bench.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2) if "--json" in args else table(results))
    if "--no-chart" not in args:
        hard = SCENARIO_DIR / "payerne_broken_cloud_day.toml"
        chart(hard, ROOT / "docs" / "control-day.png")
        print("chart: docs/control-day.png")
