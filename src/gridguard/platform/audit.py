"""The audit of every mutation that is not a command (commands have their own rows): who did
what to which resource, and when. Details never hold a password or a token."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from gridguard.platform.database import Database, utc
from gridguard.platform.models import AuditEventPublic, Page
from gridguard.platform.paging import fetch_page
from gridguard.platform.schema import audit_events
from gridguard.platform.users import Principal


async def record(
    db: Database,
    *,
    who: Principal | None,
    action: str,
    target: str,
    now: datetime,
    detail: dict[str, Any] | None = None,
    user_name: str | None = None,
) -> None:
    """One event; ``user_name`` names the actor when there is no principal (a login)."""
    async with db.write() as conn:
        await conn.execute(
            sa.insert(audit_events).values(
                at=now,
                user_name=who.name if who else (user_name or ""),
                token_id=who.token_id if who else None,
                action=action,
                target=target,
                detail=detail,
            )
        )


async def list_events(
    db: Database,
    *,
    user_name: str | None = None,
    action: str | None = None,
    target: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    offset: int = 0,
    limit: int = 50,
) -> Page[AuditEventPublic]:
    a = audit_events.c
    where: list[sa.ColumnElement[bool]] = []
    for column, value in ((a.user_name, user_name), (a.action, action), (a.target, target)):
        if value is not None:
            where.append(column == value)
    if since is not None:
        where.append(a.at >= since)
    if until is not None:
        where.append(a.at < until)
    query = sa.select(*audit_events.c).where(*where)
    return await fetch_page(
        db, query, order_by=(a.id.desc(),), offset=offset, limit=limit, convert=_event
    )


def _event(row: Any) -> AuditEventPublic:
    return AuditEventPublic.model_validate({**row._mapping, "at": utc(row.at)})  # noqa: SLF001
