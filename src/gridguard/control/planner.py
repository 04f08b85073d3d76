"""Demand planner: the lowest shaving level the battery can hold, from a forecast learned online.

When a peak is bigger than the battery can shave at T, shaving at T until the battery is empty
lets demand jump to the full peak. The least demand that is physically possible comes from
*levelling*: shaving at the lowest level T' >= T for which the battery lasts. The planner
learns the site's net load (grid + storage output, kW) per 15-minute bin of the local day,
work days and rest days apart. The forecast is robust, so one step (a motor start, a short
heat spike) cannot swing it:

* each bin's value is the *median* of the same bin over the last ``HISTORY_DAYS`` days of the
  same kind (the exponential average of the days while fewer than three are known);
* today's deviation from it is the *median* ratio observed / forecast over the last hour's
  bins (one motor-start bin among four does not move it), *bounded* to 1 +- ``DEVIATION_CAP``
  and *decaying* toward 1 by ``DEVIATION_DECAY`` per bin ahead (3/4 of it after 7 h);
* a bin nothing was learned for yet (the first days) is forecast by persistence: the median of
  the last ``PERSIST_OF`` bins seen (one motor start is one bin, not the level) for the next
  ``PERSIST_BINS`` bins, 0 beyond.

It re-plans every demand step from the present, so a level the load falls short of is taken
back at the next step. It only ever uses the past and the present.

``levelling_kw`` is pure: the smallest level at which the battery, starting from its present
energy, covers every forecast bin's excess over the level (within its power rating) and
recharges below it.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from gridguard.control.view import StorageRating
from gridguard.devices.protocols import StorageReading

BIN_S = 900
BINS_PER_DAY = 86400 // BIN_S
HISTORY_DAYS = 7
DEVIATION_CAP = 0.25
DEVIATION_DECAY = 0.99
PERSIST_BINS = 32  # 8 h
PERSIST_OF = 4


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


def reserve_kwh(
    forecast_kw: list[float], hours: list[float], *, level_kw: float, battery: Battery
) -> float:
    """Least stored energy (cells, above soc_min) that holds ``level_kw`` over the forecast,
    recharging below the level: a backward pass, bin by bin (the energy policy's reserve)."""
    need = 0.0
    for load_kw, h in zip(reversed(forecast_kw), reversed(hours), strict=True):
        excess = load_kw - level_kw
        if excess > 0.0:
            need += min(excess, battery.discharge_kw) * h / battery.efficiency_one_way
        else:
            need = max(0.0, need - min(-excess, battery.charge_kw) * h * battery.efficiency_one_way)
    return need


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
        self._surplus_sum = 0.0
        self._n = 0
        self._recent: deque[tuple[float, float]] = deque(maxlen=4)
        self._today: list[float | None] = [None] * BINS_PER_DAY
        self.history: dict[bool, list[deque[float]]] = {
            rest: [deque(maxlen=HISTORY_DAYS) for _ in range(BINS_PER_DAY)]
            for rest in (False, True)
        }
        self._seen: deque[float] = deque(maxlen=PERSIST_OF)
        self.surplus: dict[bool, list[float | None]] = {
            False: [None] * BINS_PER_DAY,
            True: [None] * BINS_PER_DAY,
        }
        self._surplus_sum = 0.0

    def observe(self, net_kw: float, epoch_s: float, surplus_kw: float = 0.0) -> None:
        """Account one sample of net load (grid + storage output) in kW, and of the PV surplus
        (what went into storage or was curtailed to hold the floor) in kW."""
        if epoch_s > self._bin_end:
            self._roll(epoch_s)
        self._sum += net_kw
        self._surplus_sum += surplus_kw
        self._n += 1

    def _roll(self, epoch_s: float) -> None:
        if self._n:
            mean = self._sum / self._n
            known = self.profile[self._day >= 5][self._bin]
            if known is not None:
                self._recent.append((mean, known))
            self._today[self._bin] = mean
            self._seen.append(mean)
            rest = self._day >= 5
            old = self.surplus[rest][self._bin]
            new = self._surplus_sum / self._n
            self.surplus[rest][self._bin] = new if old is None else old + self.weight * (new - old)
        local = datetime.fromtimestamp(epoch_s, self.zone)
        second = local.hour * 3600 + local.minute * 60 + local.second
        if local.weekday() != self._day:
            self._learn_day()
        self._day = local.weekday()
        self._bin = second // BIN_S
        self._bin_end = epoch_s - (second % BIN_S) - (epoch_s % 1.0) + BIN_S
        self._sum = 0.0
        self._surplus_sum = 0.0
        self._n = 0

    def _learn_day(self) -> None:
        """Blend the day just ended into its profile (only then: today is scaled, not learned)."""
        rest = self._day >= 5
        profile = self.profile[rest]
        for index, mean in enumerate(self._today):
            if mean is not None:
                days = self.history[rest][index]
                days.append(mean)
                old = profile[index]
                blended = mean if old is None else old + self.weight * (mean - old)
                profile[index] = statistics.median(days) if len(days) >= 3 else blended
        self._today = [None] * BINS_PER_DAY

    def forecast(self, epoch_s: float) -> tuple[list[float], list[float]]:
        """Net load per bin for the next day, and each bin's length in hours."""
        ratios = [o / p for o, p in self._recent if p > 0.0]
        ratio = statistics.median(ratios) if ratios else 1.0
        deviation = min(max(ratio - 1.0, -DEVIATION_CAP), DEVIATION_CAP)
        persisted = statistics.median(self._seen) if self._seen else 0.0
        loads: list[float] = []
        hours: list[float] = []
        for k in range(BINS_PER_DAY):
            index = self._bin + k
            rest = (self._day + index // BINS_PER_DAY) % 7 >= 5
            value = self.profile[rest][index % BINS_PER_DAY]
            if value is None:
                loads.append(persisted if k < PERSIST_BINS else 0.0)
            else:
                loads.append(value * (1.0 + deviation * DEVIATION_DECAY**k))
            first = max(0.0, min(BIN_S, self._bin_end - epoch_s))
            hours.append((first if k == 0 else BIN_S) / 3600.0)
        return loads, hours

    def surplus_kwh(self, *, charge_kw: float, efficiency_one_way: float) -> float:
        """PV surplus the battery could take over the next 24 h, from the learned bins."""
        total = 0.0
        for k in range(1, BINS_PER_DAY):
            index = self._bin + k
            rest = (self._day + index // BINS_PER_DAY) % 7 >= 5
            value = self.surplus[rest][index % BINS_PER_DAY]
            if value is not None:
                total += min(value, charge_kw) * BIN_S / 3600.0 * efficiency_one_way
        return total

    @property
    def present_kw(self) -> float | None:
        """Mean net load of the present bin so far (None before the first sample)."""
        return self._sum / self._n if self._n else None

    def learned(self) -> bool:
        """Every bin of the next 24 h has a learned value (a forecast worth spending on)."""
        for k in range(BINS_PER_DAY):
            index = self._bin + k
            rest = (self._day + index // BINS_PER_DAY) % 7 >= 5
            if self.profile[rest][index % BINS_PER_DAY] is None:
                return False
        return True

    def reserve_kwh(self, epoch_s: float, *, level_kw: float, battery: Battery) -> float | None:
        """The energy to keep for demand protection; None while the forecast is not learned."""
        if not self.learned():
            return None
        loads, hours = self.forecast(epoch_s)
        return reserve_kwh(loads, hours, level_kw=level_kw, battery=battery)

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
