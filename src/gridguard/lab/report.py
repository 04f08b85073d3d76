"""Output of ``gridguard bench control``: the side-by-side table, JSON, and the day chart.

stdout carries the table (or the JSON object) only; progress lines go to stderr: per scenario
and controller "started", every 10 % of the simulated steps, and "finished in N s".
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from gridguard.lab.bench import KEYS, Progress, bench_scenario, scenario_paths
from gridguard.plant.scenario import load_scenario

HEADERS = {
    "backflow_s": "backflow s",
    "backflow_s_after_2_cycles": "after 2 cycles s",
    "max_backflow_kw": "max backflow kW",
    "max_demand_kw": "max demand kW",
    "demand_limit_kw": "limit kW",
    "optimal_max_demand_kw": "optimum kW",
    "demand_ratio": "ratio",
    "pv_curtailed_kwh": "PV curtailed kWh",
    "speedup": "speedup",
}


def to_stderr(line: str) -> None:
    """Progress goes to stderr, one whole line per write (workers share the stream)."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _one(path: Path, progress: Progress | None = None) -> tuple[str, dict[str, Any]]:
    scn = load_scenario(path)
    return scn.name, bench_scenario(scn, progress=progress)[0]


def run_all(
    paths: list[Path], workers: int | None = None, *, progress: Progress | None = None
) -> dict[str, dict[str, Any]]:
    """Every scenario (both controllers each), spread over the CPUs.

    ``progress`` must be a module-level function when workers > 1 (it is pickled).
    """
    workers = workers or min(len(paths), os.cpu_count() or 1)
    if workers <= 1:
        return dict(_one(p, progress) for p in paths)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return dict(pool.map(_one, paths, [progress] * len(paths)))


def table(results: dict[str, dict[str, Any]]) -> str:
    """A Markdown table, GridGuard and the baseline on adjacent rows."""
    head = ["scenario", "controller", *(HEADERS[k] for k in KEYS)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, row in results.items():
        for label, values in (("GridGuard", row), ("baseline P 20 %", row["baseline"])):
            cells = [name, label, *(f"{values[k]:g}" for k in KEYS)]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(
    paths: list[Path] | None,
    *,
    as_json: bool,
    out: Callable[[str], None],
    progress: Progress | None = to_stderr,
) -> None:
    """Run the bench; the table or JSON to ``out``, progress lines to ``progress``."""
    results = run_all(scenario_paths(paths), progress=progress)
    out(json.dumps(results, indent=2) if as_json else table(results))


def chart(path: Path, png: Path) -> None:
    """Grid power, baseline, demand, target, storage and PV over the scenario (GridGuard)."""
    import matplotlib as mpl  # noqa: PLC0415

    mpl.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    from gridguard.lab.bench import goals_for, run_one  # noqa: PLC0415

    scn = load_scenario(path)
    _, score = run_one(scn, "gridguard", record=True, progress=to_stderr)
    cols = list(zip(*score.samples, strict=True))
    hours = [t / 3600 for t in cols[0]]
    g = goals_for(scn)
    fig, ax = plt.subplots(figsize=(11, 5.5), dpi=110)
    ax.plot(hours, cols[1], label="grid (+ import)", color="black", lw=1.2)
    ax.plot(hours, cols[5], label="demand, 15 min", color="tab:purple", lw=1.5)
    ax.plot(hours, cols[6], label="target T", color="tab:red", ls="--", lw=1.2)
    ax.axhline(g.streaming_kw or 0.0, label="anti-backflow baseline X", color="tab:gray", ls=":")
    ax.plot(hours, cols[2], label="storage (+ discharge)", color="tab:blue", lw=1.0)
    ax.plot(hours, cols[3], label="PV output", color="tab:orange", lw=1.0)
    ax.plot(hours, cols[4], label="PV available", color="tab:orange", ls=":", lw=1.0)
    ax.set_xlabel(f"hour of {scn.start.date()} ({scn.zone.key})")
    ax.set_ylabel("kW")
    ax.set_xlim(0, 24)
    ax.set_title(f"GridGuard closed loop, scenario {scn.name} (1-minute samples of a 1 s loop)")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)
