"""Fleet apply: one strategy template to every device a filter selects, bounded concurrency."""

from __future__ import annotations

import asyncio
from datetime import datetime

from gridguard.platform.commands import Actor, Commander
from gridguard.platform.database import Database
from gridguard.platform.devices import list_devices
from gridguard.platform.errors import CommandError, PlatformError
from gridguard.platform.models import DeviceFilter, FleetItem, FleetResult
from gridguard.protocol.models import StrategyCreate, StrategyItem

MAX_FLEET = 10_000


async def select_uids(
    db: Database, *, selection: DeviceFilter, now: datetime, offline_after_intervals: float
) -> list[str]:
    page = await list_devices(
        db,
        now=now,
        offline_after_intervals=offline_after_intervals,
        scheme=selection.scheme,
        site_name=selection.site_name,
        search=selection.q,
        online=selection.online,
        limit=MAX_FLEET,
    )
    uids = [d.uid for d in page.items]
    if selection.uids is not None:
        wanted = set(selection.uids)
        uids = [u for u in uids if u in wanted]
    return uids


async def _apply_one(
    commander: Commander, *, uid: str, item: StrategyItem, actor: Actor, gate: asyncio.Semaphore
) -> FleetItem:
    async with gate:
        try:
            result = await commander.send(
                device_uid=uid, op="update_all", data=[item], actor=actor, purpose="fleet"
            )
        except CommandError as exc:
            return FleetItem(
                uid=uid, status=exc.status_code, mid=exc.mid, code=exc.code, msg=str(exc)
            )
        except PlatformError as exc:
            return FleetItem(uid=uid, status=exc.status_code, mid=None, code=None, msg=str(exc))
    data = result.model_dump(mode="json").get("data")
    return FleetItem(uid=uid, status=200, mid=result.reply, code=200, msg=result.msg, data=data)


async def apply_to_fleet(
    commander: Commander,
    *,
    uids: list[str],
    template: StrategyCreate,
    actor: Actor,
    concurrency: int,
) -> FleetResult:
    """Every device gets its own command and its own result; one failure stops no other."""
    item = StrategyItem.model_validate(template.model_dump(exclude_none=True))
    gate = asyncio.Semaphore(concurrency)
    async with asyncio.TaskGroup() as group:
        tasks = [
            group.create_task(
                _apply_one(commander, uid=uid, item=item, actor=actor, gate=gate),
                name=f"fleet-{uid}",
            )
            for uid in uids
        ]
    items = [t.result() for t in tasks]
    ok = sum(1 for i in items if i.status == 200)
    return FleetResult(items=items, succeeded=ok, failed=len(items) - ok)
