"""Telemetry of one device: grid power by step, and the monthly demand peaks."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from gridguard.platform import devices
from gridguard.platform import telemetry as law
from gridguard.platform.api.deps import MAX_ROW_ID, ServicesDep, Viewer
from gridguard.platform.database import utc
from gridguard.platform.errors import InvalidRequestError
from gridguard.platform.models import DemandMonth, TelemetryPoint, TelemetrySeries
from gridguard.platform.telemetry_store import minute_series, month_peaks

router = APIRouter(prefix="/api/devices/{uid}", tags=["telemetry"])
MAX_POINTS = 10_000


@router.get("/telemetry")
async def telemetry(
    services: ServicesDep,
    _user: Viewer,
    uid: str,
    meter: Annotated[int, Query(ge=1, le=MAX_ROW_ID, description="the gateway meter's id")],
    since: Annotated[datetime | None, Query(alias="from", description="default: 1 h ago")] = None,
    until: Annotated[datetime | None, Query(alias="to", description="default: now")] = None,
    step: Annotated[int, Query(ge=60, description="seconds, a multiple of 60")] = 60,
) -> TelemetrySeries:
    if step % 60:
        raise InvalidRequestError(f"step: must be a multiple of 60 s, got {step}")
    await devices.get_device(services.db, uid=uid)
    end = utc(until) if until else services.clock.now()
    start = utc(since) if since else end - timedelta(hours=1)
    if start >= end:
        raise InvalidRequestError("from: must be before to")
    if (end - start).total_seconds() / step > MAX_POINTS:
        raise InvalidRequestError(f"step: more than {MAX_POINTS} points; take a larger step")
    minutes = await minute_series(services.db, uid=uid, meter_id=meter, since=start, until=end)
    points = [
        TelemetryPoint(
            at=at,
            grid_avg_kw=b.mean_kw,
            grid_min_kw=b.min_kw,
            grid_max_kw=b.max_kw,
            samples=b.count,
        )
        for at, b in law.regroup(minutes, step)
    ]
    return TelemetrySeries(device_uid=uid, meter_id=meter, step_s=step, points=points)


@router.get("/demand")
async def demand(
    services: ServicesDep,
    _user: Viewer,
    uid: str,
    month: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM")] = None,
) -> list[DemandMonth]:
    """Each meter's highest 15-minute demand per month, against that month's limit."""
    await devices.get_device(services.db, uid=uid)
    return [
        DemandMonth(
            meter_id=r.meter_id,
            month=r.month,
            peak_kw=r.peak_kw,
            peak_at=utc(r.peak_at),
            limit_kw=r.limit_kw,
            over_limit=r.limit_kw is not None and r.peak_kw > r.limit_kw,
        )
        for r in await month_peaks(services.db, uid=uid, month=month)
    ]
