"""Fleet operations over many devices at once."""

from __future__ import annotations

from fastapi import APIRouter

from gridguard.platform import fleet
from gridguard.platform.api.deps import Operator, ServicesDep
from gridguard.platform.commands import Actor
from gridguard.platform.models import FleetApply, FleetResult

router = APIRouter(prefix="/api/fleet", tags=["fleet"])


@router.post("/apply")
async def apply(services: ServicesDep, user: Operator, body: FleetApply) -> FleetResult:
    """One strategy template to every selected device; the result lists each device's answer."""
    uids = await fleet.select_uids(
        services.db,
        selection=body.devices,
        now=services.clock.now(),
        offline_after_intervals=services.settings.offline_after_intervals,
    )
    return await fleet.apply_to_fleet(
        services.commander,
        uids=uids,
        template=body.strategy,
        actor=Actor.of(user),
        concurrency=body.concurrency,
    )
