"""The command audit: every command, who sent it, and what the EMS answered."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from gridguard.platform import commands
from gridguard.platform.api.deps import PagingDep, ServicesDep, Viewer
from gridguard.platform.errors import NotFoundError
from gridguard.platform.models import CommandPublic, CommandState, Page

router = APIRouter(prefix="/api/commands", tags=["commands"])


@router.get("")
async def list_commands(
    services: ServicesDep,
    _user: Viewer,
    page: PagingDep,
    device: str | None = None,
    user: str | None = None,
    state: CommandState | None = None,
    since: Annotated[datetime | None, Query(alias="from")] = None,
    until: Annotated[datetime | None, Query(alias="to")] = None,
) -> Page[CommandPublic]:
    """Newest first."""
    return await commands.list_commands(
        services.db,
        device_uid=device,
        user_name=user,
        state=state,
        since=since,
        until=until,
        offset=page.offset,
        limit=page.limit,
    )


@router.get("/{mid}")
async def get_command(services: ServicesDep, _user: Viewer, mid: str) -> CommandPublic:
    found = await commands.get_command(services.db, mid=mid)
    if found is None:
        raise NotFoundError(f"command {mid!r} not found")
    return found
