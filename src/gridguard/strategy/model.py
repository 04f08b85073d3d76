"""The stored strategy, frozen, and the month logic of D14.

A :class:`Strategy` holds exactly the caller-set fields plus the times and author; the fields
the EMS derives (``ele_meter``, ``devices``, ``current_over_demand_condition``,
``dynamic_demand``) are computed when a report is built, never stored.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from gridguard.vocab import DISABLED, ENABLED

__all__ = ["DISABLED", "ENABLED", "Strategy", "site_month"]


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
        return self.over_demand_condition[site_month(now, time_zone) - 1]


_FIELD_NAMES = tuple(f.name for f in fields(Strategy))


def site_month(now: datetime, time_zone: str) -> int:
    """The month (1..12) of an aware ``now`` in the site's time zone."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(ZoneInfo(time_zone)).month
