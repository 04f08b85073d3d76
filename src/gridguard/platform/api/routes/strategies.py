"""Strategies of one device: every mutation is one MQTT command; the answer is the EMS's."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, status

from gridguard.platform import desired as desired_set
from gridguard.platform import devices
from gridguard.platform.api.deps import Operator, ServicesDep, Viewer
from gridguard.platform.commands import Actor
from gridguard.platform.errors import ConflictError
from gridguard.platform.models import CommandAnswer
from gridguard.platform.users import Principal
from gridguard.protocol.models import (
    Result,
    StrategyCreate,
    StrategyFields,
    StrategyItem,
    StrategyUpdate,
    StreamingOverDemand,
)

router = APIRouter(prefix="/api/devices/{uid}", tags=["strategies"])
StrategyId = Annotated[int, Path(ge=1, description="the strategy's id on the EMS")]


def _answer(result: Result) -> CommandAnswer:
    data: Any = result.model_dump(mode="json").get("data")
    return CommandAnswer(mid=result.reply, code=result.code, msg=result.msg, data=data)


async def _send(
    services: ServicesDep,
    user: Principal,
    *,
    uid: str,
    op: str,
    data: Any,
    purpose: str = "operator",
) -> CommandAnswer:
    result = await services.commander.send(
        device_uid=uid, op=op, data=data, actor=Actor.of(user), purpose=purpose
    )
    return _answer(result)


@router.get("/strategies")
async def list_strategies(
    services: ServicesDep, _user: Viewer, uid: str
) -> list[StreamingOverDemand]:
    """The strategies as the EMS last reported them (list/post or sync)."""
    row = await devices.get_device(services.db, uid=uid)
    return [StreamingOverDemand.model_validate(s) for s in row.last_list or []]


@router.post("/strategies", status_code=status.HTTP_201_CREATED)
async def create_strategy(
    services: ServicesDep, user: Operator, uid: str, body: StrategyCreate
) -> CommandAnswer:
    """create: the answer's ``data`` is ``{"id": N}``, the id the EMS assigned."""
    return await _send(services, user, uid=uid, op="create", data=body)


@router.patch("/strategies/{strategy_id}")
async def update_strategy(
    services: ServicesDep, user: Operator, uid: str, strategy_id: StrategyId, body: StrategyFields
) -> CommandAnswer:
    """update: fields present replace the stored ones, absent ones are kept (merge)."""
    data = StrategyUpdate(id=strategy_id, **body.model_dump(exclude_unset=True))
    return await _send(services, user, uid=uid, op="update", data=data)


@router.delete("/strategies/{strategy_id}")
async def delete_strategy(
    services: ServicesDep, user: Operator, uid: str, strategy_id: StrategyId
) -> CommandAnswer:
    return await _send(services, user, uid=uid, op="delete", data={"id": strategy_id})


@router.put("/strategies")
async def replace_strategies(
    services: ServicesDep,
    user: Operator,
    uid: str,
    body: Annotated[list[StrategyItem], Body(min_length=1)],
) -> CommandAnswer:
    """update_all: batch upsert, all or nothing; strategies not named are kept."""
    return await _send(services, user, uid=uid, op="update_all", data=body)


@router.post("/sync")
async def sync_strategies(services: ServicesDep, user: Operator, uid: str) -> CommandAnswer:
    """sync: the answer's ``data`` is the full list (it also becomes the reported set)."""
    return await _send(services, user, uid=uid, op="sync", data=None)


@router.post("/reconcile")
async def reconcile(services: ServicesDep, user: Operator, uid: str) -> CommandAnswer:
    """Re-apply the desired set with one update_all (409 if no set was ever applied)."""
    row = await devices.get_device(services.db, uid=uid)
    if row.desired is None:
        raise ConflictError(f"device {uid!r} has no desired set: apply strategies first")
    wanted = desired_set.from_documents(row.desired)
    if not wanted:
        raise ConflictError(f"device {uid!r}: the desired set is empty, nothing to re-apply")
    reported = desired_set.from_reported(row.last_list or [])
    items = desired_set.reconcile_items(wanted, reported)
    return await _send(services, user, uid=uid, op="update_all", data=items, purpose="reconcile")
