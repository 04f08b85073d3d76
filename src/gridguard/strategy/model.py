"""The stored strategy, frozen, and the month logic of D14.

A :class:`Strategy` holds exactly the caller-set fields plus the times and author; the fields
the EMS derives (``ele_meter``, ``devices``, ``current_over_demand_condition``,
``dynamic_demand``) are computed when a report is built, never stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from gridguard.vocab import DISABLED, ENABLED

__all__ = [
    "DISABLED",
    "ENABLED",
    "Strategy",
    "month_condition",
    "month_key",
    "site_month",
]


@dataclass(frozen=True, slots=True)
class Strategy:
    """One streaming_overdemand strategy as the EMS stores it."""

    id: int
    ele_meter_id: int
    device_type: int
    streaming_status: int
    streaming_condition: int
    individual_phase_streaming_status: int
    individual_phase_streaming_condition: int
    over_demand_status: int
    over_demand_condition: tuple[int, ...]
    dynamic_demand_status: int
    dynamic_demand_percentage: float
    updated_by: str
    created_at: str
    updated_at: str

    def document(self) -> dict[str, Any]:
        """The JSON document stored for this strategy."""
        # Every field is a scalar or a tuple of ints: no deep copy needed (dataclasses.asdict
        # deep-copies and cost a third of a command's CPU).
        doc = {name: getattr(self, name) for name in _FIELD_NAMES}
        doc["over_demand_condition"] = list(self.over_demand_condition)
        return doc

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> Strategy:
        """Rebuild from a stored document (inverse of :meth:`document`)."""
        return cls(**{**doc, "over_demand_condition": tuple(doc["over_demand_condition"])})

    def current_over_demand_condition(self, now: datetime, time_zone: str) -> int:
        """D14: ``over_demand_condition[month-1]`` for the month in the site's time zone."""
        return month_condition(self.over_demand_condition, site_month(now, time_zone))


_FIELD_NAMES = tuple(f.name for f in fields(Strategy))


def site_month(now: datetime, time_zone: str | ZoneInfo) -> int:
    """The month (1..12) of an aware ``now`` in the site's time zone (D14)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    zone = time_zone if isinstance(time_zone, ZoneInfo) else ZoneInfo(time_zone)
    return now.astimezone(zone).month


def month_key(epoch_s: float, zone: ZoneInfo) -> int:
    """``year * 12 + month - 1`` of ``epoch_s`` in ``zone``: one integer per calendar month."""
    local = datetime.fromtimestamp(epoch_s, zone)
    return local.year * 12 + local.month - 1


def month_condition(monthly_kw: Sequence[int], month: int) -> int:
    """D14: the value of a 12-month list (Jan..Dec) for ``month`` (1..12)."""
    if len(monthly_kw) != 12:
        raise ValueError(f"expected 12 monthly values (Jan..Dec), got {len(monthly_kw)}")
    return monthly_kw[month - 1]
