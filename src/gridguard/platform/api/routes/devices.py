"""Devices: the registry (list with filters and paging, one device, register, edit, remove)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from gridguard.platform import audit, devices
from gridguard.platform.api.deps import Admin, Operator, PagingDep, ServicesDep, Viewer
from gridguard.platform.models import DeviceCreate, DeviceDetail, DevicePublic, DeviceUpdate, Page
from gridguard.protocol.topics import SchemeName

router = APIRouter(prefix="/api/devices", tags=["devices"])


@router.get("")
async def list_devices(
    services: ServicesDep,
    _user: Viewer,
    page: PagingDep,
    scheme: SchemeName | None = None,
    site_name: str | None = None,
    q: Annotated[str | None, Query(description="part of the uid or display name")] = None,
    online: bool | None = None,
    drift: bool | None = None,
) -> Page[DevicePublic]:
    return await devices.list_devices(
        services.db,
        now=services.clock.now(),
        offline_after_intervals=services.settings.offline_after_intervals,
        scheme=scheme,
        site_name=site_name,
        search=q,
        online=online,
        drift=drift,
        offset=page.offset,
        limit=page.limit,
    )


def _public(services: ServicesDep, row: devices.Row) -> DevicePublic:
    return devices.public(
        row,
        now=services.clock.now(),
        offline_after_intervals=services.settings.offline_after_intervals,
    )


@router.post("", status_code=status.HTTP_201_CREATED)
async def register_device(
    services: ServicesDep, user: Operator, body: DeviceCreate
) -> DevicePublic:
    row = await devices.register_device(services.db, body=body, now=services.clock.now())
    await audit.record(
        services.db,
        who=user,
        action="device.register",
        target=body.uid,
        now=services.clock.now(),
        detail=body.model_dump(),
    )
    return _public(services, row)


@router.get("/{uid}")
async def get_device(services: ServicesDep, _user: Viewer, uid: str) -> DeviceDetail:
    row = await devices.get_device(services.db, uid=uid)
    return devices.detail(
        row,
        now=services.clock.now(),
        offline_after_intervals=services.settings.offline_after_intervals,
    )


@router.patch("/{uid}")
async def update_device(
    services: ServicesDep, user: Operator, uid: str, body: DeviceUpdate
) -> DevicePublic:
    row = await devices.update_device(services.db, uid=uid, body=body)
    await audit.record(
        services.db,
        who=user,
        action="device.update",
        target=uid,
        now=services.clock.now(),
        detail=body.model_dump(exclude_none=True),
    )
    return _public(services, row)


@router.delete("/{uid}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_device(services: ServicesDep, user: Admin, uid: str) -> None:
    await devices.delete_device(services.db, uid=uid)
    await audit.record(
        services.db, who=user, action="device.delete", target=uid, now=services.clock.now()
    )
