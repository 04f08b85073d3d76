"""Alarm rules (admin) and alarms (list, acknowledge)."""

from __future__ import annotations

from fastapi import APIRouter, status

from gridguard.platform import alarm_service, audit
from gridguard.platform.alarms import AlarmKind
from gridguard.platform.api.deps import Admin, Operator, PagingDep, RowId, ServicesDep, Viewer
from gridguard.platform.models import AlarmPublic, AlarmRuleCreate, AlarmRulePublic, Page

router = APIRouter(tags=["alarms"])


@router.get("/api/alarm-rules")
async def list_rules(services: ServicesDep, _user: Viewer) -> list[AlarmRulePublic]:
    return await alarm_service.list_rules(services.db)


@router.post("/api/alarm-rules", status_code=status.HTTP_201_CREATED)
async def create_rule(services: ServicesDep, user: Admin, body: AlarmRuleCreate) -> AlarmRulePublic:
    rule = await alarm_service.create_rule(services.db, body=body, now=services.clock.now())
    await audit.record(
        services.db,
        who=user,
        action="alarm_rule.create",
        target=str(rule.id),
        now=services.clock.now(),
        detail={"kind": rule.kind},
    )
    return rule


@router.delete("/api/alarm-rules/{rule_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_rule(services: ServicesDep, user: Admin, rule_id: RowId) -> None:
    await alarm_service.delete_rule(services.db, rule_id=rule_id)
    await audit.record(
        services.db,
        who=user,
        action="alarm_rule.delete",
        target=str(rule_id),
        now=services.clock.now(),
    )


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
    alarm = await alarm_service.acknowledge(
        services.db, alarm_id=alarm_id, by=user.name, now=services.clock.now()
    )
    await audit.record(
        services.db, who=user, action="alarm.ack", target=str(alarm_id), now=services.clock.now()
    )
    return alarm
