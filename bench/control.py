"""Closed-loop control bench: prints the table of ``gridguard bench control`` and redraws
docs/control-day.png (the factory day).

    .venv/bin/python bench/control.py [--json] [--no-chart] [SCENARIO.toml ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

from gridguard.lab.bench import SCENARIO_DIR
from gridguard.lab.report import chart, main

ROOT = Path(__file__).resolve().parents[1]


if __name__ == "__main__":
    args = sys.argv[1:]
    paths = [Path(a) for a in args if not a.startswith("--")] or None
    main(paths, as_json="--json" in args, out=print)
    if "--no-chart" not in args:
        chart(SCENARIO_DIR / "factory_day.toml", ROOT / "docs" / "control-day.png")
        print("chart: docs/control-day.png")
