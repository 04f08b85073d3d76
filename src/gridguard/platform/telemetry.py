"""Telemetry laws, pure: samples from status/post, 1-minute buckets, 15-minute demand, limits.

Sign convention as everywhere: grid power + import, - export. Demand is what the utility
meter bills: the average of grid import over a sliding 15-minute window stepped every minute,
here the mean of 15 consecutive 1-minute averages (a window with a missing minute is no
demand at all); export counts as zero import.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from gridguard.vocab import ENABLED

DEMAND_WINDOW_MIN = 15
MINUTE = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Sample:
    device_uid: str
    meter_id: int
    at: datetime
    grid_power_kw: float | None
    demand_kw: float | None
    failsafe: bool


def _moment(value: Any, fallback: datetime) -> datetime:
    """The report's ``at`` in UTC (how every database stores it and compares it: SQLite keeps
    no offset), or ``fallback`` when it is not a time that UTC can hold (``9999-12-31T23:59
    -01:00`` is past year 9999 in UTC)."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
            return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
        except (ValueError, OverflowError):
            return fallback
    return fallback


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


METER_ID_RANGE = range(-(2**31), 2**31)
"""What the samples' INTEGER column holds on every database: a meter id outside it is an
unreadable meter, skipped (it would fail the whole flush, every device's reports with it)."""


def _meter_id_ok(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value in METER_ID_RANGE


def samples_of(device_uid: str, document: Mapping[str, Any], received_at: datetime) -> list[Sample]:
    """One sample per meter of a status/post document (unreadable meters are skipped)."""
    at = _moment(document.get("at"), received_at)
    meters = document.get("meters")
    out: list[Sample] = []
    for meter in meters if isinstance(meters, list) else []:
        if not isinstance(meter, dict) or not _meter_id_ok(meter.get("meter_id")):
            continue
        out.append(
            Sample(
                device_uid=device_uid,
                meter_id=meter["meter_id"],
                at=at,
                grid_power_kw=_number(meter.get("grid_power_kw")),
                demand_kw=_number(meter.get("demand_kw")),
                failsafe=bool(meter.get("failsafe") or document.get("failsafe")),
            )
        )
    return out


def minute_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


@dataclass(frozen=True, slots=True)
class Bucket:
    """Grid power over one minute of one meter."""

    sum_kw: float
    count: int
    min_kw: float
    max_kw: float

    def merged(self, other: Bucket) -> Bucket:
        return Bucket(
            self.sum_kw + other.sum_kw,
            self.count + other.count,
            min(self.min_kw, other.min_kw),
            max(self.max_kw, other.max_kw),
        )

    @property
    def mean_kw(self) -> float:
        return self.sum_kw / self.count


BucketKey = tuple[str, int, datetime]


def minute_buckets(samples: Iterable[Sample]) -> dict[BucketKey, Bucket]:
    """Samples with a grid reading, grouped by (device, meter, minute)."""
    out: dict[BucketKey, Bucket] = {}
    last_at: datetime | None = None
    minute = datetime.min.replace(tzinfo=UTC)  # replaced at the first sample
    for s in samples:
        if s.grid_power_kw is None:
            continue
        if s.at is not last_at:  # a report's meters share its time: one minute_of for them
            last_at, minute = s.at, minute_of(s.at)
        key = (s.device_uid, s.meter_id, minute)
        one = Bucket(s.grid_power_kw, 1, s.grid_power_kw, s.grid_power_kw)
        found = out.get(key)
        out[key] = one if found is None else found.merged(one)
    return out


def sliding_demand(
    minute_means: Mapping[datetime, float], ends: Iterable[datetime]
) -> dict[datetime, float]:
    """15-minute demand for each minute in ``ends`` whose full window is present."""
    out: dict[datetime, float] = {}
    for end in ends:
        window = [end - i * MINUTE for i in range(DEMAND_WINDOW_MIN)]
        if all(m in minute_means for m in window):
            out[end] = sum(max(0.0, minute_means[m]) for m in window) / DEMAND_WINDOW_MIN
    return out


def month_key(moment: datetime, time_zone: str) -> str:
    """``YYYY-MM`` of ``moment`` in the site's time zone (the billing month)."""
    local = moment.astimezone(ZoneInfo(time_zone))
    return f"{local.year:04d}-{local.month:02d}"


def month_limit_kw(
    reported: Sequence[Mapping[str, Any]], meter_id: int, month: int
) -> float | None:
    """The month's over-demand limit on a meter: the lowest over an enabled strategy's."""
    limits = [
        float(s["over_demand_condition"][month - 1])
        for s in reported
        if s.get("ele_meter_id") == meter_id
        and s.get("over_demand_status") == ENABLED
        and len(s.get("over_demand_condition") or []) >= month
    ]
    return min(limits) if limits else None


def regroup(
    points: Sequence[tuple[datetime, Bucket]], step_s: int
) -> list[tuple[datetime, Bucket]]:
    """Minute buckets merged into ``step_s`` buckets (a multiple of 60), aligned to UTC."""
    out: dict[datetime, Bucket] = {}
    for minute, bucket in points:
        epoch = int(minute.timestamp())
        start = datetime.fromtimestamp(epoch - epoch % step_s, UTC)
        out[start] = out[start].merged(bucket) if start in out else bucket
    return sorted(out.items())
