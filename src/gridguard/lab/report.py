"""Output of ``gridguard bench control``: the side-by-side table, JSON, and the hard-day chart.

stdout carries the table (or the JSON object) only; progress lines go to stderr: per scenario
and controller "started", every 10 % of the simulated steps, and "finished in N s".
Every (scenario, variant, controller) run and every scenario's LPs is one job; jobs are
spread over the CPUs, longest first.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

from gridguard.lab.bench import (
    KINDS,
    LABELS,
    VARIANTS,
    run_one,
    scenario_paths,
    variant_plant,
    with_yardsticks,
    yardsticks,
)
from gridguard.lab.score import Progress
from gridguard.plant.scenario import load_scenario

COLUMNS = {
    "backflow_s": "backflow s",
    "backflow_s_outside": "outside window s",
    "phase_backflow_s_outside": "per phase outside s",
    "below_baseline_kwh": "below kWh",
    "worst_outside_kw": "worst outside kW",
    "max_demand_kw": "max demand kW",
    "demand_limit_kw": "limit kW",
    "optimal_max_demand_kw": "optimum kW",
    "demand_ratio": "ratio",
    "pv_curtailed_kwh": "PV curtailed kWh",
    "necessary_curtailment_kwh": "necessary kWh",
    "storage_full_cycles": "cycles",
    "soc_at_peak_pct": "SOC at peak %",
    "speedup": "speedup",
}
Results = dict[str, dict[str, dict[str, Any]]]


def to_stderr(line: str) -> None:
    """Progress goes to stderr, one whole line per write (workers share the stream)."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _run(
    path: Path, variant: str, kind: str, overrides: dict[str, str], progress: Progress | None
) -> dict[str, Any]:
    scn = load_scenario(path)
    plant = variant_plant(scn, variant, overrides)
    return run_one(scn, kind, plant=plant, progress=progress)[0]


def _sticks(path: Path, progress: Progress | None) -> dict[str, float]:
    began = time.perf_counter()
    out = yardsticks(load_scenario(path))
    if progress:
        progress(f"{path.stem} / LPs: finished in {time.perf_counter() - began:.1f} s")
    return out


class _InProcess:
    """The pool's ``submit`` run on the spot (one worker: progress may be any callable)."""

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        fut: Future[Any] = Future()
        fut.set_result(fn(*args))
        return fut


def run_all(
    paths: list[Path],
    variants: list[str] | dict[Path, list[str]] | None = None,
    *,
    overrides: dict[str, str] | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
) -> Results:
    """Every scenario x variant x controller: {scenario: {variant: {kind: row}}}.

    ``variants``: one list for every scenario, or a list per scenario path (None: all).

    ``progress`` must be a module-level function when workers > 1 (it is pickled).
    """
    plan = variants if isinstance(variants, dict) else dict.fromkeys(paths, variants)
    names = {p: plan.get(p) or list(VARIANTS) for p in paths}
    unknown = [v for vs in names.values() for v in vs if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variant(s) {unknown}; known: {list(VARIANTS)}")
    over = overrides or {}
    for p in paths:  # bad --plant values fail before any run
        variant_plant(load_scenario(p), names[p][0], over)
    jobs = [(p, v, k) for p in paths for v in names[p] for k in KINDS]
    lengths = {p: load_scenario(p).duration_s for p in paths}
    jobs.sort(key=lambda j: -lengths[j[0]])  # longest first
    workers = workers or min(len(jobs), os.cpu_count() or 1)
    if workers <= 1:
        return _collect(_InProcess(), paths, jobs, over, progress)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return _collect(pool, paths, jobs, over, progress)


def _collect(
    pool: ProcessPoolExecutor | _InProcess,
    paths: list[Path],
    jobs: list[tuple[Path, str, str]],
    over: dict[str, str],
    progress: Progress | None,
) -> Results:
    sticks = {p: pool.submit(_sticks, p, progress) for p in paths}
    runs = {j: pool.submit(_run, *j, over, progress) for j in jobs}
    by_name: Results = {}
    for (p, v, k), fut in runs.items():
        row = with_yardsticks(fut.result(), sticks[p].result())
        by_name.setdefault(p.stem, {}).setdefault(v, {})[k] = row
    order = [p.stem for p in paths]
    return {name: by_name[name] for name in order}


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, list):
        return "/".join(f"{v:g}" for v in value)
    return f"{value:g}"


def table(results: Results) -> str:
    """A Markdown table, GridGuard and the baseline on adjacent rows per variant."""
    head = ["scenario", "plant", "controller", *COLUMNS.values()]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, by_variant in results.items():
        for variant, rows in by_variant.items():
            for kind in KINDS:
                cells = [name, variant, LABELS[kind], *(_cell(rows[kind][k]) for k in COLUMNS)]
                lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(
    paths: list[Path] | None,
    *,
    as_json: bool,
    out: Callable[[str], None],
    variants: list[str] | None = None,
    overrides: dict[str, str] | None = None,
    progress: Progress | None = to_stderr,
    workers: int | None = None,
) -> None:
    """Run the bench; the table or JSON to ``out``, progress lines to ``progress``."""
    results = run_all(
        scenario_paths(paths), variants, overrides=overrides, progress=progress, workers=workers
    )
    out(json.dumps(results, indent=2) if as_json else table(results))


def chart(path: Path, png: Path) -> None:
    """A hard day: grid, baseline, limit, guarded level, SOC, PV available vs delivered."""
    import matplotlib as mpl  # noqa: PLC0415

    mpl.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    from gridguard.lab.bench import goals_for, limit_kw  # noqa: PLC0415

    scn = load_scenario(path)
    _, score = run_one(scn, "gridguard", record=True, progress=to_stderr)
    cols = list(zip(*score.samples, strict=True))
    hours = [t / 3600 for t in cols[0]]
    g = goals_for(scn)
    fig, ax = plt.subplots(figsize=(11, 6), dpi=110)
    ax.plot(hours, cols[1], label="grid (+ import)", color="black", lw=1.0)
    ax.plot(hours, cols[5], label="demand, 15 min", color="tab:purple", lw=1.5)
    ax.axhline(limit_kw(scn), label="limit", color="tab:red", lw=1.0)
    ax.plot(hours, cols[6], label="target T", color="tab:red", ls="--", lw=1.0)
    ax.plot(hours, cols[7], label="guarded level", color="tab:pink", ls="-.", lw=1.0)
    ax.axhline(g.streaming_kw or 0.0, label="anti-backflow baseline X", color="tab:gray", ls=":")
    ax.plot(hours, cols[2], label="storage (+ discharge)", color="tab:blue", lw=0.8)
    ax.plot(hours, cols[3], label="PV delivered", color="tab:orange", lw=1.0)
    ax.plot(hours, cols[4], label="PV available", color="tab:orange", ls=":", lw=1.0)
    ax.set_xlabel(f"hour from {scn.start.isoformat()} ({scn.zone.key})")
    ax.set_ylabel("kW")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8, ncol=3)
    soc = ax.twinx()
    soc.plot(hours, cols[8], label="SOC %", color="tab:green", lw=1.0)
    soc.set_ylim(0, 100)
    soc.set_ylabel("SOC %", color="tab:green")
    ax.set_title(f"GridGuard closed loop, scenario {scn.name} (1-minute samples of a 1 s loop)")
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)
