"""Build the measured-irradiance scenarios' CSV traces from a BSRN record shipped in pvlib.

    pip download --no-deps pvlib==0.9.5        # the wheel, not installed, not committed
    python bench/make_measured_traces.py pvlib-0.9.5-py3-none-any.whl

Source: ``pvlib/data/bsrn-pay0616.dat.gz`` inside the pvlib 0.9.5 wheel: the BSRN
station-to-archive file of Payerne (PAY, MeteoSwiss, 46.8 N 6.9 E), June 2016, logical record
LR0100: per minute the mean, standard deviation, minimum and maximum of global horizontal
irradiance (GHI, W/m2, UTC), shifted by +120 min to local summer time (CEST). Nothing else
is taken from it. Terms of use: unclear. pvlib's code is BSD-3-Clause; whether that covers its
bundled data, and what the BSRN's own terms for the station's data are, is not recorded in this
repository (docs/control.md, Scenarios): only the derived kW traces are shipped.

PV: ``min(ac_kw, dc_kwp * GHI / 1000 * 0.88)`` (a flat roof array with 12 % losses, clipped by
its inverters). Resampling to 1 s (day scenario) keeps each minute's measured mean, minimum
and maximum exactly: a calm minute (max - min < 20 W/m2) is the line between its neighbours'
means shifted to its own mean; a broken-cloud minute is two levels, its minimum and its
maximum, with one contiguous bright (or shaded) run whose length makes the mean right and
whose position inside the minute is drawn from a seeded generator, so cloud edges are steps
within one second. The multi-day scenario keeps 1-minute means (the loader interpolates).

Load: synthetic (no measured industrial load ships in a registry package), seeded: two shifts,
motor starts of 20-40 % of the peak within one second (running 5-40 min), single-phase welders
on phase A (switching every 30 s), and a fixed phase split of the base load (A 25 %, B 33 %,
C 42 %).
"""

from __future__ import annotations

import gzip
import io
import sys
import zipfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parents[1] / "src" / "gridguard" / "lab" / "scenarios"
MEMBER = "pvlib/data/bsrn-pay0616.dat.gz"
UTC_OFFSET_MIN = 120  # Payerne in June: CEST
DC_KWP, AC_KW = 800.0, 700.0
PEAK_KW = 800.0
SPLIT = (0.25, 0.33, 0.42)


def read_lr0100(wheel: Path) -> np.ndarray:
    """GHI (mean, min, max) per local minute of June 2016, shape (30 * 1440, 3); gaps = 0."""
    with zipfile.ZipFile(wheel) as z, gzip.open(io.BytesIO(z.read(MEMBER)), "rt") as f:
        lines = f.read().splitlines()
    start = lines.index("*U0100") + 1
    out = np.zeros((30 * 1440 + UTC_OFFSET_MIN, 3))
    for line in lines[start:]:
        if line.startswith("*"):
            break
        parts = line.split()
        if len(parts) == 10:  # the first line of a minute's pair: day, minute, GHI ...
            day, minute = int(parts[0]), int(parts[1])
            mean, low, high = float(parts[2]), float(parts[4]), float(parts[5])
            k = (day - 1) * 1440 + minute + UTC_OFFSET_MIN
            if k < len(out) and mean > -99:
                out[k] = (max(mean, 0.0), max(low, 0.0), max(high, 0.0))
    return out[: 30 * 1440]


def pv_kw(ghi: np.ndarray) -> np.ndarray:
    return np.asarray(np.minimum(AC_KW, DC_KWP * ghi / 1000.0 * 0.88))


def to_seconds(minutes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """1-s GHI keeping each minute's mean, min and max (see the module docstring)."""
    mean, low, high = minutes[:, 0], minutes[:, 1], minutes[:, 2]
    n = len(mean)
    centre = np.arange(n) * 60 + 30.0
    t = np.arange(n * 60)
    smooth = np.interp(t, centre, mean).reshape(n, 60)
    smooth += (mean - smooth.mean(axis=1))[:, None]
    out = np.maximum(smooth, 0.0)
    for k in np.nonzero(high - low >= 20.0)[0]:
        span = high[k] - low[k]
        bright = round(60 * (mean[k] - low[k]) / span)
        row = np.full(60, low[k])
        at = int(rng.integers(0, 61 - bright)) if bright < 60 else 0
        row[at : at + bright] = high[k]
        row += mean[k] - row.mean()  # rounding of the run length
        out[k] = row
    return np.asarray(out.ravel())


def load_phases(seconds: int, step_s: int, rng: np.random.Generator, day0: int) -> np.ndarray:
    """Per-phase load (A, B, C) in kW at ``step_s``: shifts, motor starts, welders."""
    t = np.arange(0, seconds, step_s)
    hours = (t / 3600.0) % 24.0
    weekday = ((t // 86400 + day0) % 7) < 5
    base = np.where((hours >= 6.0) & (hours < 22.0) & weekday, 420.0, 140.0)
    base = np.where((hours >= 12.0) & (hours < 12.75) & weekday, 260.0, base)
    wobble = rng.standard_normal(seconds // 60 + 1)[t // 60]  # held for a minute
    base = base * (1.0 + 0.015 * wobble)
    motors = np.zeros(len(t))
    for day in range(seconds // 86400):
        for _ in range(int(rng.integers(8, 14))):
            begin = day * 86400 + int(rng.uniform(6.5 * 3600, 21.5 * 3600))
            size = rng.uniform(0.2, 0.4) * PEAK_KW
            run = int(rng.uniform(300, 2400))
            motors[(t >= begin) & (t < begin + run)] += size
    blocks = seconds // 30 + 1  # a welder holds its state for 30 s
    weld = np.where(rng.random(blocks) < 0.3, rng.uniform(10.0, 30.0, blocks), 0.0)[t // 30]
    weld = np.where((hours >= 7.0) & (hours < 19.0), weld, 0.0)
    a = SPLIT[0] * base + motors / 3 + weld
    b = SPLIT[1] * base + motors / 3
    c = SPLIT[2] * base + motors / 3
    return np.column_stack([a, b, c])


def write(name: str, step_s: int, phases: np.ndarray, pv: np.ndarray) -> None:
    seconds = np.arange(len(pv)) * step_s
    data = np.column_stack([seconds, phases.sum(axis=1), pv, phases])
    head = "seconds,load_kw,pv_kw,load_a_kw,load_b_kw,load_c_kw"
    np.savetxt(HERE / name, data, delimiter=",", header=head, comments="", fmt="%.1f")
    print(f"wrote {HERE / name} ({len(pv)} rows)")


def main(wheel: Path) -> None:
    ghi = read_lr0100(wheel)
    day = slice(14 * 1440, 15 * 1440)  # 15 June 2016: broken cumulus all day
    rng = np.random.default_rng(15)
    pv_day = pv_kw(to_seconds(ghi[day], rng))
    write("payerne_broken_cloud_day.csv", 1, load_phases(86400, 1, rng, day0=2), pv_day)
    days = slice(16 * 1440, 19 * 1440)  # 17-19 June 2016 (Fri-Sun), variable
    rng = np.random.default_rng(17)
    pv_days = pv_kw(ghi[days, 0])
    write("payerne_three_days.csv", 60, load_phases(3 * 86400, 60, rng, day0=4), pv_days)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
