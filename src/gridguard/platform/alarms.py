"""Alarm conditions, pure: which rule kinds exist and when each one holds.

Telemetry kinds are judged per (device, meter) on each status sample; a condition must hold for
at least the rule's ``duration_s`` before its alarm starts, and the alarm ends with the first
sample where it no longer holds. Command kinds are events: the alarm starts and ends at once
and waits to be acknowledged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from gridguard.platform.telemetry import Sample, month_key, month_limit_kw
from gridguard.vocab import ENABLED

AlarmKind = Literal[
    "backflow",
    "demand_over_limit",
    "failsafe",
    "device_offline",
    "command_rejected",
    "command_timed_out",
]
Severity = Literal["info", "warning", "critical"]
TELEMETRY_KINDS: tuple[AlarmKind, ...] = ("backflow", "demand_over_limit", "failsafe")
COMMAND_KINDS: Mapping[str, AlarmKind] = {
    "rejected": "command_rejected",
    "timed_out": "command_timed_out",
}


def baseline_kw(reported: Sequence[Mapping[str, Any]], meter_id: int) -> float | None:
    """The anti-backflow baseline on a meter: the highest enabled ``streaming_condition``."""
    values = [
        float(s.get("streaming_condition", 0))
        for s in reported
        if s.get("ele_meter_id") == meter_id and s.get("streaming_status") == ENABLED
    ]
    return max(values) if values else None


def condition(
    kind: AlarmKind, sample: Sample, reported: Sequence[Mapping[str, Any]], time_zone: str
) -> tuple[bool, str]:
    """Whether ``kind`` holds on this sample, and the alarm's message if it does."""
    meter = sample.meter_id
    if kind == "failsafe":
        return sample.failsafe, f"meter {meter}: fail-safe is on (no valid meter reading)"
    if kind == "backflow":
        baseline = baseline_kw(reported, meter)
        grid = sample.grid_power_kw
        held = baseline is not None and grid is not None and grid < baseline
        return held, f"meter {meter}: grid import {grid} kW below the baseline {baseline} kW"
    if kind == "demand_over_limit":
        month = int(month_key(sample.at, time_zone)[5:])
        limit = month_limit_kw(reported, meter, month)
        demand = sample.demand_kw
        held = limit is not None and demand is not None and demand > limit
        return held, f"meter {meter}: demand {demand} kW over the month's limit {limit} kW"
    return False, ""


class Debounce:
    """A condition must hold continuously for ``duration_s`` before it counts."""

    def __init__(self) -> None:
        self._since: dict[tuple[Any, ...], datetime] = {}

    def update(self, key: tuple[Any, ...], held: bool, at: datetime, duration_s: float) -> bool:
        if not held:
            self._since.pop(key, None)
            return False
        since = self._since.setdefault(key, at)
        return (at - since).total_seconds() >= duration_s
