"""Generate the CSV traces of the shipped scenarios, deterministically (fixed seeds).

    python bench/make_traces.py

Each trace is ``seconds,load_kw,pv_kw`` (+ optional ``load_a_kw,load_b_kw,load_c_kw`` and
``charger_kw``). Loads switch (the closed loop holds them), PV is smooth (it interpolates).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parents[1] / "src" / "gridguard" / "lab" / "scenarios"


def clear_sky_kw(hours: np.ndarray, rated_kw: float) -> np.ndarray:
    """A clear June/July day in eastern China: sunrise ~05:30, sunset ~19:00."""
    x = np.clip((hours - 5.5) / 13.5, 0.0, 1.0)
    return rated_kw * 0.97 * np.sin(np.pi * x) ** 1.4


def workday_kw(hours: np.ndarray, *, base_kw: float, shift_kw: float) -> np.ndarray:
    """A factory day: night base, day shift 08:00-17:30, lunch break 12:00-13:00."""
    load = np.full_like(hours, base_kw)
    day = (hours >= 8.0) & (hours < 17.5)
    load[day] = shift_kw
    load[(hours >= 7.5) & (hours < 8.0)] = (base_kw + shift_kw) / 2
    load[(hours >= 12.0) & (hours < 13.0)] = shift_kw - 500.0
    load[(hours >= 14.0) & (hours < 16.0)] += 0.12 * shift_kw  # afternoon air conditioning
    load[(hours >= 17.5) & (hours < 22.0)] = base_kw + 0.25 * (shift_kw - base_kw)
    return load


def write(name: str, columns: dict[str, np.ndarray]) -> None:
    names = list(columns)
    data = np.column_stack([columns[n] for n in names])
    fmt = ["%d"] + ["%.1f"] * (len(names) - 1)
    np.savetxt(HERE / name, data, delimiter=",", header=",".join(names), comments="", fmt=fmt)


def factory_day() -> None:
    """10-s steps: a sudden 500 kW lunch-break drop at 12:00 under full sun, two EVs."""
    rng = np.random.default_rng(12)
    seconds = np.arange(0, 86400, 10)
    hours = seconds / 3600
    load = workday_kw(hours, base_kw=120.0, shift_kw=800.0) + rng.normal(0.0, 8.0, len(hours))
    pv = clear_sky_kw(hours, 600.0)
    ev = np.where((hours >= 8.5) & (hours < 11.5), 100.0, 0.0)
    ev += np.where((hours >= 14.0) & (hours < 17.0), 60.0, 0.0)
    write("factory_day.csv", {"seconds": seconds, "load_kw": load, "pv_kw": pv, "charger_kw": ev})


def unbalanced_day() -> None:
    """10-s steps: phase A lightly loaded; under sun A exports while the total imports."""
    rng = np.random.default_rng(34)
    seconds = np.arange(0, 86400, 10)
    hours = seconds / 3600
    day = (hours >= 8.0) & (hours < 18.0)
    a = np.where(day, 40.0, 15.0) + rng.normal(0.0, 2.0, len(hours))
    b = np.where(day, 180.0, 40.0) + rng.normal(0.0, 5.0, len(hours))
    c = np.where(day, 160.0, 40.0) + rng.normal(0.0, 5.0, len(hours))
    pv = clear_sky_kw(hours, 300.0)
    write(
        "unbalanced_day.csv",
        {
            "seconds": seconds,
            "load_kw": a + b + c,
            "pv_kw": pv,
            "load_a_kw": a,
            "load_b_kw": b,
            "load_c_kw": c,
        },
    )


def month(name: str, *, seed: int, peak_day: int, peak_factor: float) -> None:
    """1-min steps, July 2024: workdays and quiet weekends, cloudy days, one hot peak day."""
    rng = np.random.default_rng(seed)
    minutes = np.arange(0, 31 * 1440)
    day = minutes // 1440
    hours = (minutes % 1440) / 60
    weekday = (day + 0) % 7  # 2024-07-01 is a Monday
    load = np.zeros(len(minutes))
    pv = np.zeros(len(minutes))
    for d in range(31):
        sel = day == d
        if weekday[sel][0] < 5:
            shape = workday_kw(hours[sel], base_kw=150.0, shift_kw=760.0)
            shape[(hours[sel] >= 12.0) & (hours[sel] < 13.0)] += 300.0  # shorter lunch dip
        else:
            shape = np.full(sel.sum(), 150.0)
        factor = peak_factor if d + 1 == peak_day else rng.uniform(0.93, 1.0)
        load[sel] = shape * factor
        pv[sel] = clear_sky_kw(hours[sel], 250.0) * rng.uniform(0.55, 1.0)
    load *= 1.0 + rng.normal(0.0, 0.015, len(minutes))
    write(name, {"seconds": minutes * 60, "load_kw": load, "pv_kw": pv})


def main() -> None:
    factory_day()
    unbalanced_day()
    month("month_peak_covered.csv", seed=56, peak_day=17, peak_factor=1.10)
    month("month_peak_uncovered.csv", seed=78, peak_day=17, peak_factor=1.25)


if __name__ == "__main__":
    main()
