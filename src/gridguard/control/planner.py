"""Demand planner: the lowest shaving level the battery can hold, from a forecast learned online.

When a peak is bigger than the battery can shave at T, shaving at T until the battery is empty
lets demand jump to the full peak. The least demand that is physically possible comes from
*levelling*: shaving at the lowest level T' >= T for which the battery lasts. The planner
learns the site's net load (grid + storage output, kW) per 15-minute bin of the local day,
work days and rest days apart, as an exponential average of past days; it scales that profile
by how today compares with it over the last hour, and re-plans every demand step, so errors in
the forecast are corrected as the day goes. It only ever uses the past and the present.

``levelling_kw`` is pure: the smallest level at which the battery, starting from its present
energy, covers every forecast bin's excess over the level (within its power rating) and
recharges below it.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from gridguard.control.view import StorageRating
from gridguard.devices.protocols import StorageReading

BIN_S = 900
BINS_PER_DAY = 86400 // BIN_S


@dataclass(frozen=True, slots=True)
class Battery:
    """Energy budget of the storage on one meter, in kWh at the AC side where noted."""

    stored_kwh: float  # energy above soc_min, in the cells
    room_kwh: float  # energy up to soc_max, in the cells
    discharge_kw: float
    charge_kw: float
    efficiency_one_way: float


def battery_budget(
    readings: tuple[StorageReading, ...], ratings: tuple[StorageRating, ...]
) -> Battery:
    """The energy budget of the online units. Each brings its own round-trip efficiency
    (site file ``[[storage]] efficiency``); the budget takes their one-way efficiencies
    averaged by capacity (exact when the units are alike)."""
    stored = room = power = capacity = eta_kwh = 0.0
    for r, rating in zip(readings, ratings, strict=True):
        if not r.online:
            continue
        per_pct = rating.capacity_kwh / 100.0
        stored += max(0.0, r.soc_pct - rating.soc_min_pct) * per_pct
        room += max(0.0, rating.soc_max_pct - r.soc_pct) * per_pct
        power += rating.rated_kw
        capacity += rating.capacity_kwh
        eta_kwh += math.sqrt(rating.efficiency) * rating.capacity_kwh
    eta = eta_kwh / capacity if capacity > 0.0 else 1.0
    return Battery(stored, room, power, power, eta)


def _feasible(forecast_kw: list[float], hours: list[float], level_kw: float, b: Battery) -> bool:
    energy = b.stored_kwh
    full = b.stored_kwh + b.room_kwh
    for load_kw, h in zip(forecast_kw, hours, strict=True):
        excess = load_kw - level_kw
        if excess > 0.0:
            if excess > b.discharge_kw:
                return False
            energy -= excess * h / b.efficiency_one_way
            if energy < 0.0:
                return False
        else:
            energy = min(full, energy + min(-excess, b.charge_kw) * h * b.efficiency_one_way)
    return True


def levelling_kw(
    forecast_kw: list[float], hours: list[float], *, floor_kw: float, battery: Battery
) -> float:
    """Smallest level >= ``floor_kw`` the battery can hold over the forecast bins."""
    if not forecast_kw or _feasible(forecast_kw, hours, floor_kw, battery):
        return floor_kw
    low, high = floor_kw, max(forecast_kw)
    while high - low > 0.25:
        mid = (low + high) / 2.0
        if _feasible(forecast_kw, hours, mid, battery):
            high = mid
        else:
            low = mid
    return high


class LoadPlanner:
    """Learns the net-load profile and turns it into a levelling level."""

    def __init__(self, zone: ZoneInfo, weight: float) -> None:
        self.zone = zone
        self.weight = weight
        self.profile: dict[bool, list[float | None]] = {
            False: [None] * BINS_PER_DAY,
            True: [None] * BINS_PER_DAY,
        }
        self._bin_end = -math.inf
        self._day = 0  # weekday of the present bin, 0 = Monday
        self._bin = 0
        self._sum = 0.0
        self._n = 0
        self._recent: deque[tuple[float, float]] = deque(maxlen=4)
        self._today: list[float | None] = [None] * BINS_PER_DAY

    def observe(self, net_kw: float, epoch_s: float) -> None:
        """Account one sample of net load (grid + storage output) in kW."""
        if epoch_s > self._bin_end:
            self._roll(epoch_s)
        self._sum += net_kw
        self._n += 1

    def _roll(self, epoch_s: float) -> None:
        if self._n:
            mean = self._sum / self._n
            known = self.profile[self._day >= 5][self._bin]
            if known is not None:
                self._recent.append((mean, known))
            self._today[self._bin] = mean
        local = datetime.fromtimestamp(epoch_s, self.zone)
        second = local.hour * 3600 + local.minute * 60 + local.second
        if local.weekday() != self._day:
            self._learn_day()
        self._day = local.weekday()
        self._bin = second // BIN_S
        self._bin_end = epoch_s - (second % BIN_S) - (epoch_s % 1.0) + BIN_S
        self._sum = 0.0
        self._n = 0

    def _learn_day(self) -> None:
        """Blend the day just ended into its profile (only then: today is scaled, not learned)."""
        profile = self.profile[self._day >= 5]
        for index, mean in enumerate(self._today):
            if mean is not None:
                old = profile[index]
                profile[index] = mean if old is None else old + self.weight * (mean - old)
        self._today = [None] * BINS_PER_DAY

    def forecast(self, epoch_s: float) -> tuple[list[float], list[float]]:
        """Net load per bin for the next day, and each bin's length in hours."""
        seen = sum(p for _, p in self._recent)
        scale = min(max(sum(o for o, _ in self._recent) / seen, 0.5), 2.0) if seen > 0 else 1.0
        loads: list[float] = []
        hours: list[float] = []
        for k in range(BINS_PER_DAY):
            index = self._bin + k
            rest = (self._day + index // BINS_PER_DAY) % 7 >= 5
            value = self.profile[rest][index % BINS_PER_DAY]
            loads.append(0.0 if value is None else value * scale)
            first = max(0.0, min(BIN_S, self._bin_end - epoch_s))
            hours.append((first if k == 0 else BIN_S) / 3600.0)
        return loads, hours

    def level_kw(self, epoch_s: float, *, floor_kw: float, battery: Battery) -> float:
        """The levelling level for the rest of the forecast horizon."""
        loads, hours = self.forecast(epoch_s)
        return levelling_kw(loads, hours, floor_kw=floor_kw, battery=battery)

    def export(self) -> dict[str, list[float | None]]:
        return {"work": list(self.profile[False]), "rest": list(self.profile[True])}

    def restore(self, state: dict[str, list[float | None]]) -> None:
        for key, rest in (("work", False), ("rest", True)):
            values = state.get(key)
            if values is not None and len(values) == BINS_PER_DAY:
                self.profile[rest] = [None if v is None else float(v) for v in values]
