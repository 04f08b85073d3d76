"""Closed-loop control bench: prints the table of ``gridguard bench control`` and redraws
docs/control-day.png (a hard day: the measured broken-cumulus day).

    .venv/bin/python bench/control.py [--json] [--no-chart] [--all-variants] [SCENARIO.toml ...]

By default the day scenarios run under the plants ``DAY_VARIANTS`` (the scenario's own plant
first: the docs' table), the longer ones under their own plant only (a month costs minutes per
run); ``--all-variants`` runs every variant everywhere. The JSON goes to
docs/control-bench.json as well.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gridguard.lab.bench import SCENARIO_DIR, VARIANTS, scenario_paths
from gridguard.lab.report import chart, run_all, table, to_stderr
from gridguard.plant.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
SHORT_S = 86400
DAY_VARIANTS = [
    "scenario",
    "lag 2 s",
    "lag 3 s",
    "lag 2 s told 1 s",
    "meter 1 cycle late",
    "setpoints 1 cycle late",
    "noise 0.5 kW",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenarios", nargs="*", type=Path, help="scenario TOML files (all)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    parser.add_argument("--no-chart", action="store_true", help="do not redraw the day chart")
    parser.add_argument(
        "--all-variants", action="store_true", help="every plant variant on every scenario"
    )
    args = parser.parse_args()
    paths = scenario_paths(args.scenarios or None)
    plan = {
        p: list(VARIANTS)
        if args.all_variants
        else DAY_VARIANTS
        if load_scenario(p).duration_s <= SHORT_S
        else ["scenario"]
        for p in paths
    }
    results = run_all(paths, plan, progress=to_stderr)
    (ROOT / "docs" / "control-bench.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2) if args.json else table(results))
    if not args.no_chart:
        hard = SCENARIO_DIR / "payerne_broken_cloud_day.toml"
        chart(hard, ROOT / "docs" / "control-day.png")
        print("chart: docs/control-day.png")


if __name__ == "__main__":
    main()
