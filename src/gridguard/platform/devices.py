"""The device registry: devices appear on their first report or are registered by REST.

Online means a message (list/post, status/post or a result) arrived within
``offline_after_intervals`` report intervals. The last list/post is kept whole; the desired set
(see :mod:`.desired`) is kept beside it and drift is computed from the two.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from gridguard.platform import desired as desired_set
from gridguard.platform.database import Database, StoredJson, aware, execute_many
from gridguard.platform.errors import ConflictError, NotFoundError
from gridguard.platform.models import (
    DeviceCreate,
    DeviceDetail,
    DevicePublic,
    DeviceUpdate,
    DriftPublic,
    Page,
)
from gridguard.platform.schema import devices
from gridguard.protocol.models import StreamingOverDemand
from gridguard.protocol.topics import TopicScheme

Row = sa.Row[tuple[Any, ...]]


def scheme_of(row: Row) -> TopicScheme:
    return TopicScheme(
        row.scheme, product_key=row.product_key, tenant=row.tenant, prefix=row.prefix
    )


SCHEME_COLUMNS = ("scheme", "product_key", "tenant", "prefix")


def _scheme_values(scheme: TopicScheme) -> dict[str, str]:
    return {
        "scheme": scheme.scheme,
        "product_key": scheme.product_key,
        "tenant": scheme.tenant,
        "prefix": scheme.prefix,
    }


def drift_of(row: Row) -> desired_set.Drift | None:
    if row.desired is None:
        return None
    reported = desired_set.from_reported(row.last_list or [])
    return desired_set.drift(desired_set.from_documents(row.desired), reported)


def _drift_public(row: Row) -> DriftPublic | None:
    found = drift_of(row)
    if found is None:
        return None
    return DriftPublic(
        in_drift=found.any,
        missing=list(found.missing),
        extra=list(found.extra),
        changed={k: list(v) for k, v in (found.changed or {}).items()},
    )


def public(row: Row, *, now: datetime, offline_after_intervals: float) -> DevicePublic:
    seen = aware(row.last_seen_at)
    window = timedelta(seconds=row.report_interval_s * offline_after_intervals)
    return DevicePublic(
        uid=row.uid,
        scheme=row.scheme,
        product_key=row.product_key,
        tenant=row.tenant,
        prefix=row.prefix,
        topic_prefix=scheme_of(row).prefix_path,
        display_name=row.display_name,
        site_name=row.site_name,
        time_zone=row.time_zone,
        report_interval_s=row.report_interval_s,
        online=seen is not None and now - seen <= window,
        created_at=aware(row.created_at),
        last_seen_at=seen,
        last_list_at=aware(row.last_list_at),
        last_status_at=aware(row.last_status_at),
        strategy_count=len(row.last_list or []),
        desired_at=aware(row.desired_at),
        desired_by=row.desired_by,
        drift=_drift_public(row),
    )


def detail(row: Row, *, now: datetime, offline_after_intervals: float) -> DeviceDetail:
    base = public(row, now=now, offline_after_intervals=offline_after_intervals)
    reported = [StreamingOverDemand.model_validate(s) for s in row.last_list or []]
    return DeviceDetail(**base.model_dump(), last_status=row.last_status, reported=reported)


def _found(row: Row | None, uid: str) -> Row:
    if row is None:
        raise NotFoundError(f"device {uid!r} not found")
    return row


async def device_row(conn: AsyncConnection, *, uid: str) -> Row:
    return _found(
        (await conn.execute(sa.select(*devices.c).where(devices.c.uid == uid))).first(), uid
    )


def device_row_in(conn: Connection, *, uid: str) -> Row:
    """:func:`device_row` inside a :meth:`Database.run_write` / ``run_read`` function."""
    return _found(conn.execute(sa.select(*devices.c).where(devices.c.uid == uid)).first(), uid)


async def get_device(db: Database, *, uid: str) -> Row:
    async with db.read() as conn:
        return await device_row(conn, uid=uid)


async def register_device(db: Database, *, body: DeviceCreate, now: datetime) -> Row:
    scheme = body.topic_scheme()
    values = body.model_dump(exclude={"scheme", "product_key", "tenant", "prefix"})
    async with db.write() as conn:
        taken = await conn.scalar(sa.select(devices.c.uid).where(devices.c.uid == body.uid))
        if taken is not None:
            raise ConflictError(f"device {body.uid!r} is already registered")
        await conn.execute(
            sa.insert(devices).values(**values, **_scheme_values(scheme), created_at=now)
        )
        return await device_row(conn, uid=body.uid)


async def update_device(db: Database, *, uid: str, body: DeviceUpdate) -> Row:
    values = body.model_dump(exclude_none=True)
    async with db.write() as conn:
        await device_row(conn, uid=uid)
        if values:
            await conn.execute(sa.update(devices).where(devices.c.uid == uid).values(**values))
        return await device_row(conn, uid=uid)


async def delete_device(db: Database, *, uid: str) -> None:
    async with db.write() as conn:
        result = await conn.execute(sa.delete(devices).where(devices.c.uid == uid))
    if result.rowcount == 0:
        raise NotFoundError(f"device {uid!r} not found")


async def list_devices(
    db: Database,
    *,
    now: datetime,
    offline_after_intervals: float,
    scheme: str | None = None,
    site_name: str | None = None,
    search: str | None = None,
    online: bool | None = None,
    drift: bool | None = None,
    offset: int = 0,
    limit: int = 50,
) -> Page[DevicePublic]:
    """Filters on columns run in SQL; online and drift are computed, then the page is cut."""
    query = sa.select(*devices.c).order_by(devices.c.uid)
    if scheme is not None:
        query = query.where(devices.c.scheme == scheme)
    if site_name is not None:
        query = query.where(devices.c.site_name == site_name)
    if search:
        pattern = f"%{search}%"
        query = query.where(
            sa.or_(devices.c.uid.like(pattern), devices.c.display_name.like(pattern))
        )
    async with db.read() as conn:
        rows = (await conn.execute(query)).all()
    items = [public(r, now=now, offline_after_intervals=offline_after_intervals) for r in rows]
    if online is not None:
        items = [d for d in items if d.online == online]
    if drift is not None:
        items = [d for d in items if (d.drift is not None and d.drift.in_drift) == drift]
    return Page(items=items[offset : offset + limit], total=len(items), offset=offset, limit=limit)


def record_seen_many(
    db: Database,
    conn: Connection,
    reports: Mapping[str, tuple[TopicScheme, Mapping[str, Any]]],
    *,
    now: datetime,
) -> None:
    """Messages from these devices: each registered if new, marked seen, its values stored; one
    upsert (executemany) per set of columns, in uid order (lock order: see telemetry_store).
    A :class:`~gridguard.platform.database.JsonText` value is stored as its text."""
    if not reports:
        return
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    schemes: dict[TopicScheme, dict[str, Any]] = {}
    for uid, (scheme, values) in sorted(reports.items()):
        if scheme not in schemes:
            schemes[scheme] = {f"p_{k}": v for k, v in _scheme_values(scheme).items()}
        row = {"p_uid": uid, "p_created_at": now, "p_last_seen_at": now, **schemes[scheme]}
        for key, value in values.items():
            row[f"p_{key}"] = value
        groups.setdefault(tuple(row), []).append(row)
    if len(groups) > 1 and not db.is_sqlite:
        # one upsert per column set, each in uid order, is not one order over the batch: first
        # every device of the batch, registered or marked seen, in uid order (that locks the
        # existing rows and the new ones alike), or two transactions writing the same devices
        # (another instance's flush, a result recorded here) deadlock on PostgreSQL
        base = ("p_uid", "p_created_at", "p_last_seen_at", *(f"p_{k}" for k in SCHEME_COLUMNS))
        rows = sorted(
            ({k: row[k] for k in base} for group in groups.values() for row in group),
            key=lambda row: str(row["p_uid"]),
        )
        execute_many(conn, _upsert(db.is_sqlite, tuple(k.removeprefix("p_") for k in base)), rows)
    for keys, rows in groups.items():
        columns = tuple(key.removeprefix("p_") for key in keys)
        execute_many(conn, _upsert(db.is_sqlite, columns), rows)


@functools.cache
def _upsert(is_sqlite: bool, columns: tuple[str, ...]) -> Any:
    """The upsert of these columns, built once per set of columns (building it, ``excluded``
    above all, was a third of the devices' part of a telemetry flush)."""
    insert = (sqlite if is_sqlite else postgresql).insert(devices)
    binds = {c: sa.bindparam(f"p_{c}", type_=_bind_type(c)) for c in columns}
    return insert.values(binds).on_conflict_do_update(
        index_elements=["uid"],
        set_={c: insert.excluded[c] for c in columns if c not in {"uid", "created_at"}},
    )


def _bind_type(column: str) -> Any:
    kind = devices.c[column].type
    return StoredJson() if isinstance(kind, sa.JSON) else kind


_STORE_DESIRED = (
    sa.update(devices)
    .where(devices.c.uid == sa.bindparam("p_uid"))
    .values(
        desired=sa.bindparam("p_desired", type_=devices.c.desired.type),
        desired_at=sa.bindparam("p_desired_at", type_=devices.c.desired_at.type),
        desired_by=sa.bindparam("p_desired_by"),
    )
)
"""Built once: it runs for every successful command (building it was ~5 % of a command's CPU)."""


def store_desired(
    conn: Connection, *, uid: str, documents: list[dict[str, Any]], by: str, now: datetime
) -> None:
    conn.execute(
        _STORE_DESIRED,
        {"p_uid": uid, "p_desired": documents, "p_desired_at": now, "p_desired_by": by},
    )
