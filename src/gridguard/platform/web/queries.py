"""The dashboard's own reads: the fleet page, recent samples, changes for the live stream.

Kept beside the platform's services (which they only read through): a fleet page with 10,000
devices reads the light columns of every device once, sorts and cuts the page in Python, and
reads the heavy ones (status, strategies, peaks) only for the rows shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from gridguard.platform import desired as desired_set
from gridguard.platform import telemetry as law
from gridguard.platform.database import Database, aware, utc
from gridguard.platform.schema import alarms, commands, demand_peaks, devices, telemetry_samples
from gridguard.platform.web.views import grid_now_kw

PAGE_SIZE = 50


@dataclass(frozen=True, slots=True)
class FleetFilter:
    q: str = ""
    online: bool | None = None
    alarms_only: bool = False
    drift_only: bool = False
    offset: int = 0
    limit: int = PAGE_SIZE


@dataclass(frozen=True, slots=True)
class FleetRow:
    uid: str
    display_name: str
    site_name: str
    online: bool
    open_alarms: int
    grid_kw: float | None
    peak_kw: float | None
    limit_kw: float | None
    in_drift: bool


@dataclass(frozen=True, slots=True)
class FleetPage:
    rows: list[FleetRow]
    total: int
    offset: int
    limit: int
    online_count: int
    device_count: int


def _online(seen: datetime | None, interval_s: float, now: datetime, factor: float) -> bool:
    return seen is not None and now - seen <= timedelta(seconds=interval_s * factor)


async def _open_alarm_counts(conn: Any) -> dict[str, int]:
    query = (
        sa.select(alarms.c.device_uid, sa.func.count())
        .where(alarms.c.ended_at.is_(None))
        .group_by(alarms.c.device_uid)
    )
    return {str(r[0]): int(r[1]) for r in await conn.execute(query)}


def _same_as_applied(wanted: list[dict[str, Any]], reported: list[dict[str, Any]]) -> bool:
    """A quick look at the raw documents: True only when they agree field for field."""
    have = {r.get("id"): r for r in reported}
    if len(have) != len(wanted):
        return False
    for doc in wanted:
        other = have.get(doc.get("id"))
        if other is None or any(doc.get(k) != other.get(k) for k in desired_set.COMPARED):
            return False
    return True


def in_drift(wanted: list[dict[str, Any]] | None, reported: list[dict[str, Any]] | None) -> bool:
    """The platform's drift rule, with the raw comparison first (a fleet is mostly in step)."""
    if wanted is None or _same_as_applied(wanted, reported or []):
        return False
    found = desired_set.drift(
        desired_set.from_documents(wanted), desired_set.from_reported(reported or [])
    )
    return found.any


async def _drifting(conn: Any, uids: Sequence[str] | None) -> set[str]:
    """Which of ``uids`` (None: every device) are in drift."""
    d = devices.c
    query = sa.select(d.uid, d.desired, d.last_list).where(d.desired.is_not(None))
    if uids is not None:
        query = query.where(d.uid.in_(list(uids)))
    return {
        uid for uid, wanted, reported in await conn.execute(query) if in_drift(wanted, reported)
    }


async def fleet_page(
    db: Database, *, now: datetime, offline_after_intervals: float, selection: FleetFilter
) -> FleetPage:
    """Devices with open alarms first, then by uid; filters, then the page."""
    d = devices.c
    light = sa.select(d.uid, d.display_name, d.site_name, d.last_seen_at, d.report_interval_s)
    if selection.q:
        pattern = f"%{selection.q}%"
        light = light.where(sa.or_(d.uid.like(pattern), d.display_name.like(pattern)))
    async with db.read() as conn:
        rows = list((await conn.execute(light)).all())
        counts = await _open_alarm_counts(conn)
        drifting = await _drifting(conn, None) if selection.drift_only else set()
    device_count = len(rows)
    online = {
        r.uid: _online(aware(r.last_seen_at), r.report_interval_s, now, offline_after_intervals)
        for r in rows
    }
    if selection.online is not None:
        rows = [r for r in rows if online[r.uid] == selection.online]
    if selection.alarms_only:
        rows = [r for r in rows if counts.get(r.uid)]
    if selection.drift_only:
        rows = [r for r in rows if r.uid in drifting]
    rows.sort(key=lambda r: (-counts.get(r.uid, 0), r.uid))
    shown = rows[selection.offset : selection.offset + selection.limit]
    if not selection.drift_only:
        async with db.read() as conn:
            drifting = await _drifting(conn, [r.uid for r in shown])
    heavy = await _page_details(db, [r.uid for r in shown], now)
    out = [
        FleetRow(
            uid=r.uid,
            display_name=r.display_name,
            site_name=r.site_name,
            online=online[r.uid],
            open_alarms=counts.get(r.uid, 0),
            grid_kw=heavy[r.uid][0],
            peak_kw=heavy[r.uid][1],
            limit_kw=heavy[r.uid][2],
            in_drift=r.uid in drifting,
        )
        for r in shown
    ]
    return FleetPage(
        out, len(rows), selection.offset, selection.limit, sum(online.values()), device_count
    )


async def _page_details(
    db: Database, uids: Sequence[str], now: datetime
) -> dict[str, tuple[float | None, float | None, float | None]]:
    """uid -> (grid kW now, this month's highest peak, that meter's limit)."""
    d, p = devices.c, demand_peaks.c
    async with db.read() as conn:
        rows = (
            await conn.execute(
                sa.select(d.uid, d.last_status, d.time_zone).where(d.uid.in_(list(uids)))
            )
        ).all()
        months = {r.uid: law.month_key(now, r.time_zone) for r in rows}
        peaks = (
            await conn.execute(
                sa.select(p.device_uid, p.month, p.peak_kw, p.limit_kw).where(
                    p.device_uid.in_(list(uids)), p.month.in_(set(months.values()))
                )
            )
        ).all()
    best: dict[str, tuple[float, float | None]] = {}
    for peak in peaks:
        if months.get(peak.device_uid) != peak.month:
            continue
        if peak.device_uid not in best or peak.peak_kw > best[peak.device_uid][0]:
            best[peak.device_uid] = (peak.peak_kw, peak.limit_kw)
    return {r.uid: (grid_now_kw(r.last_status), *best.get(r.uid, (None, None))) for r in rows}


async def recent_samples(
    db: Database, *, uid: str, meter_id: int, since: datetime
) -> list[tuple[datetime, float | None]]:
    """The grid readings stored since ``since`` (for the live chart's first draw)."""
    t = telemetry_samples.c
    query = (
        sa.select(t.at, t.grid_power_kw)
        .where(t.device_uid == uid, t.meter_id == meter_id, t.at >= since)
        .order_by(t.at)
    )
    async with db.read() as conn:
        return [(utc(r.at), r.grid_power_kw) for r in await conn.execute(query)]


@dataclass(frozen=True, slots=True)
class DeviceMarks:
    status_at: datetime | None
    list_at: datetime | None
    status: dict[str, Any] | None


async def device_marks(db: Database, *, uid: str) -> DeviceMarks:
    """When the device's last status and last strategy list arrived, and that status."""
    d = devices.c
    query = sa.select(d.last_status_at, d.last_list_at, d.last_status).where(d.uid == uid)
    async with db.read() as conn:
        row = (await conn.execute(query)).first()
    if row is None:
        return DeviceMarks(None, None, None)
    return DeviceMarks(aware(row.last_status_at), aware(row.last_list_at), row.last_status)


async def changed_commands(db: Database, *, uid: str | None, since: datetime) -> list[Any]:
    c = commands.c
    moment = sa.func.coalesce(c.answered_at, c.sent_at)
    query = sa.select(c.mid, c.device_uid, c.op, c.state, c.code, c.msg, moment.label("at"))
    query = query.where(moment > since).order_by(moment)
    if uid is not None:
        query = query.where(c.device_uid == uid)
    async with db.read() as conn:
        return list((await conn.execute(query.limit(500))).all())


async def changed_alarms(db: Database, *, uid: str | None, since: datetime) -> list[Any]:
    a = alarms.c
    query = sa.select(*alarms.c).where(
        sa.or_(a.started_at > since, a.ended_at > since, a.acknowledged_at > since)
    )
    if uid is not None:
        query = query.where(a.device_uid == uid)
    async with db.read() as conn:
        return list((await conn.execute(query.order_by(a.id).limit(500))).all())
