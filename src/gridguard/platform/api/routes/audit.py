"""The audit of mutations other than commands (admin)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from gridguard.platform import audit
from gridguard.platform.api.deps import Admin, PagingDep, ServicesDep
from gridguard.platform.models import AuditEventPublic, Page

router = APIRouter(prefix="/api/audit", tags=["audit"])


@router.get("")
async def list_events(
    services: ServicesDep,
    _user: Admin,
    page: PagingDep,
    user: str | None = None,
    action: str | None = None,
    target: str | None = None,
    since: Annotated[datetime | None, Query(alias="from")] = None,
    until: Annotated[datetime | None, Query(alias="to")] = None,
) -> Page[AuditEventPublic]:
    """Newest first: device, user, token and alarm changes and logins (commands: /api/commands)."""
    return await audit.list_events(
        services.db,
        user_name=user,
        action=action,
        target=target,
        since=since,
        until=until,
        offset=page.offset,
        limit=page.limit,
    )
