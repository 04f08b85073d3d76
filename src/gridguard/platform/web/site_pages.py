"""One site: the live page (grid, phases, storage, PV), its history, and the demand page."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from gridguard.platform import devices
from gridguard.platform import telemetry as law
from gridguard.platform.alarms import baseline_kw
from gridguard.platform.api.deps import ServicesDep
from gridguard.platform.telemetry_store import minute_series, month_peaks
from gridguard.platform.web import queries
from gridguard.platform.web.render import page
from gridguard.platform.web.session import Viewer
from gridguard.platform.web.views import last_months, live_point, meters_of, peak_table

router = APIRouter(include_in_schema=False)
LIVE_WINDOW = timedelta(minutes=10)
RANGES: dict[str, tuple[timedelta, int]] = {
    "1h": (timedelta(hours=1), 60),
    "6h": (timedelta(hours=6), 60),
    "1d": (timedelta(days=1), 300),
    "7d": (timedelta(days=7), 1800),
    "30d": (timedelta(days=30), 7200),
    "90d": (timedelta(days=90), 21600),
}
DETAILED = timedelta(days=7)
"""Up to this range the demand is computed at every minute; beyond, every quarter hour."""


def _meters(row: devices.Row) -> list[int]:
    found = meters_of(row.last_status) or sorted(
        {s["ele_meter_id"] for s in row.last_list or [] if "ele_meter_id" in s}
    )
    return found or [1]


def _meter(row: devices.Row, meter: int | None) -> int:
    known = _meters(row)
    return meter if meter in known else known[0]


def limit_now(row: devices.Row, meter: int, now: datetime) -> float | None:
    month = int(law.month_key(now, row.time_zone)[5:])
    return law.month_limit_kw(row.last_list or [], meter, month)


@router.get("/devices/{uid}")
async def site(
    request: Request, services: ServicesDep, user: Viewer, uid: str, meter: int | None = None
) -> HTMLResponse:
    row = await devices.get_device(services.db, uid=uid)
    meter_id = _meter(row, meter)
    now = services.clock.now()
    history = await queries.recent_samples(
        services.db, uid=uid, meter_id=meter_id, since=now - LIVE_WINDOW
    )
    live: dict[str, Any] = {"history": [[at.timestamp(), kw] for at, kw in history]}
    if row.last_status:
        live["latest"] = live_point(row.last_status, meter_id, now).as_json()
    public = devices.public(
        row, now=now, offline_after_intervals=services.settings.offline_after_intervals
    )
    return page(
        request,
        "site.html",
        user,
        device=public,
        meter=meter_id,
        meters=_meters(row),
        baseline=baseline_kw(row.last_list or [], meter_id),
        limit=limit_now(row, meter_id, now),
        live=live,
        ranges=list(RANGES),
    )


def _demand_points(
    minutes: list[tuple[datetime, law.Bucket]], step_s: int, every_minute: bool
) -> list[tuple[datetime, float]]:
    """Highest 15-minute demand within each step."""
    means = {at: b.mean_kw for at, b in minutes}
    ends = [at for at in means if every_minute or at.minute % 15 == 14]
    demand = law.sliding_demand(means, ends)
    best: dict[int, tuple[datetime, float]] = {}
    for at, kw in demand.items():
        epoch = int(at.timestamp())
        slot = epoch - epoch % step_s
        if slot not in best or kw > best[slot][1]:
            best[slot] = (at, kw)
    return sorted(best.values())


@router.get("/devices/{uid}/history")
async def history(
    services: ServicesDep,
    _user: Viewer,
    uid: str,
    meter: int,
    span: Annotated[str, Query(alias="range", pattern="^(1h|6h|1d|7d|30d|90d)$")] = "6h",
) -> dict[str, Any]:
    """Grid power (mean, min, max per step) and 15-minute demand from the minute rollups."""
    row = await devices.get_device(services.db, uid=uid)
    length, step_s = RANGES[span]
    end = services.clock.now()
    minutes = await minute_series(
        services.db, uid=uid, meter_id=meter, since=end - length - timedelta(minutes=15), until=end
    )
    shown = [(at, b) for at, b in minutes if at >= end - length]
    grid = law.regroup(shown, step_s)
    demand = _demand_points(minutes, step_s, length <= DETAILED)
    return {
        "step_s": step_s,
        "from": (end - length).timestamp(),
        "to": end.timestamp(),
        "t": [at.timestamp() for at, _ in grid],
        "avg": [round(b.mean_kw, 2) for _, b in grid],
        "min": [b.min_kw for _, b in grid],
        "max": [b.max_kw for _, b in grid],
        "demand_t": [at.timestamp() for at, _ in demand],
        "demand": [round(kw, 2) for _, kw in demand],
        "limit": limit_now(row, meter, end),
    }


def _month_bounds(month: str, time_zone: str) -> tuple[datetime, datetime]:
    zone = ZoneInfo(time_zone)
    start = datetime(int(month[:4]), int(month[5:]), 1, tzinfo=zone)
    nxt = datetime(start.year + start.month // 12, start.month % 12 + 1, 1, tzinfo=zone)
    return start, nxt


@router.get("/devices/{uid}/demand")
async def demand(
    request: Request,
    services: ServicesDep,
    user: Viewer,
    uid: str,
    month: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}$")] = None,
) -> HTMLResponse:
    row = await devices.get_device(services.db, uid=uid)
    now = services.clock.now()
    chosen = month or law.month_key(now, row.time_zone)
    months = last_months(law.month_key(now, row.time_zone))
    peaks = await month_peaks(services.db, uid=uid, month=None)
    tables = {}
    for meter_id in _meters(row):
        limits = {m: law.month_limit_kw(row.last_list or [], meter_id, int(m[5:])) for m in months}
        mine = [p for p in peaks if p.meter_id == meter_id]
        tables[meter_id] = peak_table(mine, months, limits)
    public = devices.public(
        row, now=now, offline_after_intervals=services.settings.offline_after_intervals
    )
    return page(
        request, "demand.html", user, device=public, tables=tables, month=chosen, month_list=months
    )


@router.get("/devices/{uid}/demand-series")
async def demand_series(
    services: ServicesDep,
    _user: Viewer,
    uid: str,
    meter: int,
    month: Annotated[str, Query(pattern=r"^\d{4}-\d{2}$")],
) -> dict[str, Any]:
    """The month's 15-minute demand at each quarter hour's end, and its limit."""
    row = await devices.get_device(services.db, uid=uid)
    start, end = _month_bounds(month, row.time_zone)
    minutes = await minute_series(
        services.db, uid=uid, meter_id=meter, since=start - timedelta(minutes=15), until=end
    )
    points = _demand_points(minutes, 900, every_minute=False)
    limit = law.month_limit_kw(row.last_list or [], meter, int(month[5:]))
    return {
        "t": [at.timestamp() for at, _ in points],
        "demand": [round(kw, 2) for _, kw in points],
        "limit": limit,
    }
