"""Alarm rules (admin) and alarms (list, acknowledge)."""

from __future__ import annotations

from fastapi import APIRouter, status

from gridguard.platform import alarm_service
from gridguard.platform.alarms import AlarmKind
from gridguard.platform.api.deps import Admin, Operator, PagingDep, RowId, ServicesDep, Viewer
from gridguard.platform.models import AlarmPublic, AlarmRuleCreate, AlarmRulePublic, Page

router = APIRouter(tags=["alarms"])


@router.get("/api/alarm-rules")
async def list_rules(services: ServicesDep, _user: Viewer) -> list[AlarmRulePublic]:
    return await alarm_service.list_rules(services.db)


@router.post("/api/alarm-rules", status_code=status.HTTP_201_CREATED)
async def create_rule(
    services: ServicesDep, _user: Admin, body: AlarmRuleCreate
) -> AlarmRulePublic:
    return await alarm_service.create_rule(services.db, body=body, now=services.clock.now())


@router.delete("/api/alarm-rules/{rule_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_rule(services: ServicesDep, _user: Admin, rule_id: RowId) -> None:
    await alarm_service.delete_rule(services.db, rule_id=rule_id)


@router.get("/api/alarms")
async def list_alarms(
    services: ServicesDep,
    _user: Viewer,
    page: PagingDep,
    device: str | None = None,
    kind: AlarmKind | None = None,
    active: bool | None = None,
    acknowledged: bool | None = None,
) -> Page[AlarmPublic]:
    """Newest first."""
    return await alarm_service.list_alarms(
        services.db,
        device_uid=device,
        kind=kind,
        active=active,
        acknowledged=acknowledged,
        offset=page.offset,
        limit=page.limit,
    )


@router.post("/api/alarms/{alarm_id}/ack")
async def acknowledge(services: ServicesDep, user: Operator, alarm_id: RowId) -> AlarmPublic:
    return await alarm_service.acknowledge(
        services.db, alarm_id=alarm_id, by=user.name, now=services.clock.now()
    )
