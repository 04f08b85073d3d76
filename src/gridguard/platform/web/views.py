"""Pure view laws: what a page shows, from the platform's rows and documents (no I/O)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gridguard.platform.telemetry import _moment, _number
from gridguard.protocol.codec import format_loc
from gridguard.protocol.models import StrategyFields

STATUS_FIELDS = (
    "streaming_status",
    "individual_phase_streaming_status",
    "over_demand_status",
    "dynamic_demand_status",
)
NUMBER_FIELDS = (
    "device_type",
    "ele_meter_id",
    "streaming_condition",
    "individual_phase_streaming_condition",
    "dynamic_demand_percentage",
)
LIMITS = "over_demand_condition"
MONTHS = 12
_EMS_FIELD = re.compile(r"^data(?:\[\d+\])?\.(?P<field>[a-z_]+(?:\[\d+\])?)\s*:\s*(?P<rule>.*)$")


@dataclass(frozen=True, slots=True)
class LivePoint:
    """One status report of one meter, as the live chart draws it (kW, + import/discharge)."""

    at_s: float
    grid_kw: float | None
    phase_kw: tuple[float | None, float | None, float | None]
    storage_kw: float | None
    soc_pct: float | None
    pv_kw: float | None
    demand_kw: float | None
    target_kw: float | None
    sent_ms: float | None = None
    """When the EMS published the report (its ``timestamp``), for the chart's latency."""

    def as_json(self) -> dict[str, Any]:
        return {
            "t": self.at_s,
            "grid": self.grid_kw,
            "a": self.phase_kw[0],
            "b": self.phase_kw[1],
            "c": self.phase_kw[2],
            "storage": self.storage_kw,
            "soc": self.soc_pct,
            "pv": self.pv_kw,
            "demand": self.demand_kw,
            "target": self.target_kw,
            "sent_ms": self.sent_ms,
        }


def _sum(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(sum(known), 3) if known else None


def meters_of(document: Mapping[str, Any] | None) -> list[int]:
    meters = (document or {}).get("meters")
    return [m["meter_id"] for m in meters or [] if isinstance(m, dict) and "meter_id" in m]


def live_point(document: Mapping[str, Any], meter_id: int, received_at: datetime) -> LivePoint:
    """The meter's readings and the storage, SOC and PV behind it, from a status document."""
    meters = [m for m in document.get("meters") or [] if isinstance(m, dict)]
    meter = next((m for m in meters if m.get("meter_id") == meter_id), {})
    behind = [
        d
        for d in document.get("devices") or []
        if isinstance(d, dict) and d.get("meter_id") == meter_id and d.get("online", True)
    ]
    storage = [d for d in behind if d.get("kind") == "storage"]
    phases = meter.get("phase_power_kw")
    phase: tuple[float | None, ...] = (None, None, None)
    if isinstance(phases, list) and len(phases) == 3:
        phase = tuple(_number(p) for p in phases)
    socs = [_number(d.get("soc_pct")) for d in storage]
    known_socs = [s for s in socs if s is not None]
    return LivePoint(
        at_s=_moment(document.get("at"), received_at).timestamp(),
        grid_kw=_number(meter.get("grid_power_kw")),
        phase_kw=(phase[0], phase[1], phase[2]),
        storage_kw=_sum([_number(d.get("power_kw")) for d in storage]),
        soc_pct=round(sum(known_socs) / len(known_socs), 2) if known_socs else None,
        pv_kw=_sum([_number(d.get("power_kw")) for d in behind if d.get("kind") == "pv"]),
        demand_kw=_number(meter.get("demand_kw")),
        target_kw=_number(meter.get("target_kw")),
        sent_ms=_number(document.get("timestamp")),
    )


def grid_now_kw(document: Mapping[str, Any] | None) -> float | None:
    """All gateway meters' grid power together, from the latest status."""
    meters = (document or {}).get("meters") or []
    return _sum([_number(m.get("grid_power_kw")) for m in meters if isinstance(m, dict)])


# --- strategy forms ---------------------------------------------------------------------


def _typed(text: str) -> Any:
    """A form's text as the JSON number it spells (so the protocol's own rules judge it)."""
    stripped = text.strip()
    for kind in (int, float):
        try:
            return kind(stripped)
        except ValueError:
            continue
    return stripped


def parse_strategy_form(form: Mapping[str, str], prefix: str = "") -> dict[str, Any]:
    """Every strategy field present in a submitted form; statuses: checked 1, unchecked 2.

    Each status toggle is sent with a hidden ``2`` before the checkbox ``1``; the form parser
    keeps the last value, so a field reads 1 exactly when its box is checked.
    """
    out: dict[str, Any] = {}
    for name in STATUS_FIELDS:
        if f"{prefix}{name}" in form:
            out[name] = _typed(form[f"{prefix}{name}"])
    for name in (*NUMBER_FIELDS, "id"):
        text = form.get(f"{prefix}{name}", "")
        if text.strip():
            out[name] = _typed(text)
    limits = [form.get(f"{prefix}{LIMITS}_{i}") for i in range(MONTHS)]
    if any(v is not None for v in limits):
        out[LIMITS] = [_typed(v) if v and v.strip() else None for v in limits]
    by = form.get(f"{prefix}updated_by", "").strip()
    if by:
        out["updated_by"] = by
    return out


def _rule(err: Mapping[str, Any]) -> str:
    return "required field missing" if err["type"] == "missing" else str(err["msg"])


def field_errors(errors: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """``field`` (or ``over_demand_condition[3]``) -> the broken rule, from pydantic."""
    out: dict[str, str] = {}
    for err in errors:
        loc = tuple(err.get("loc", ()))
        out.setdefault(format_loc(loc) if loc else "_form", _rule(err))
    return out


def item_errors(errors: Sequence[Mapping[str, Any]]) -> list[tuple[int, str, str]]:
    """(item index, field, rule) for a list body (``[i].field``)."""
    out = []
    for err in errors:
        loc = tuple(err.get("loc", ()))
        index = loc[0] if loc and isinstance(loc[0], int) else 0
        rest = loc[1:] if loc and isinstance(loc[0], int) else loc
        out.append((index, format_loc(rest) if rest else "_form", _rule(err)))
    return out


def ems_error(msg: str) -> dict[str, str]:
    """The EMS's 400 ``msg`` placed at the field it names (``data.x: rule``), else the form."""
    found = _EMS_FIELD.match(msg)
    if found:
        return {found["field"]: found["rule"]}
    return {"_form": msg}


def changed_fields(submitted: Mapping[str, Any], reported: Mapping[str, Any]) -> dict[str, Any]:
    """Only what differs from the reported strategy: an edit merges (absent fields are kept)."""
    settable = set(StrategyFields.model_fields)
    return {k: v for k, v in submitted.items() if k in settable and reported.get(k) != v}


# --- demand ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PeakRow:
    month: str
    peak_kw: float | None
    peak_at: datetime | None
    limit_kw: float | None

    @property
    def headroom_kw(self) -> float | None:
        if self.peak_kw is None or self.limit_kw is None:
            return None
        return round(self.limit_kw - self.peak_kw, 1)

    @property
    def over(self) -> bool:
        return self.headroom_kw is not None and self.headroom_kw < 0


def last_months(month: str, count: int = MONTHS) -> list[str]:
    """``count`` months ending with ``month`` (``YYYY-MM``), newest first."""
    year, number = int(month[:4]), int(month[5:])
    out = []
    for _ in range(count):
        out.append(f"{year:04d}-{number:02d}")
        year, number = (year, number - 1) if number > 1 else (year - 1, 12)
    return out


def peak_table(
    peaks: Sequence[Any], months: Sequence[str], limit_of: Mapping[str, float | None]
) -> list[PeakRow]:
    """One row per month (newest first) for one meter; a month without data shows its limit."""
    by_month = {p.month: p for p in peaks}
    rows = []
    for month in months:
        found = by_month.get(month)
        limit = found.limit_kw if found and found.limit_kw is not None else limit_of.get(month)
        rows.append(
            PeakRow(
                month=month,
                peak_kw=round(found.peak_kw, 1) if found else None,
                peak_at=found.peak_at if found else None,
                limit_kw=limit,
            )
        )
    return rows
