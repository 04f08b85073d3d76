"""Strategies of one device: every mutation is one MQTT command; the answer is the EMS's."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Request, status

from gridguard.platform import desired as desired_set
from gridguard.platform import devices
from gridguard.platform.api.deps import (
    Commanding,
    Operator,
    Services,
    ServicesDep,
    Viewer,
    services_of,
)
from gridguard.platform.commands import Actor
from gridguard.platform.errors import ConflictError
from gridguard.platform.models import CommandAnswer
from gridguard.platform.users import Principal, TokenCheck
from gridguard.protocol.models import (
    Result,
    StrategyCreate,
    StrategyFields,
    StrategyItem,
    StreamingOverDemand,
)

router = APIRouter(prefix="/api/devices/{uid}", tags=["strategies"])
StrategyId = Annotated[int, Path(ge=1, description="the strategy's id on the EMS")]


def _answer(result: Result) -> CommandAnswer:
    data: Any = result.model_dump(mode="json").get("data")
    return CommandAnswer(mid=result.reply, code=result.code, msg=result.msg, data=data)


async def _send(
    services: Services,
    caller: Principal | TokenCheck,
    *,
    uid: str,
    op: str,
    data: Any,
    purpose: str = "operator",
) -> CommandAnswer:
    """``caller``: a token not checked yet is checked in the command's insert transaction."""
    actor = caller if isinstance(caller, TokenCheck) else Actor.of(caller)
    result = await services.commander.send(
        device_uid=uid, op=op, data=data, actor=actor, purpose=purpose
    )
    return _answer(result)


# The operations, for these routes and the dashboard's forms (which check their caller first).


async def send_create(
    services: Services, caller: Principal | TokenCheck, *, uid: str, body: StrategyCreate
) -> CommandAnswer:
    return await _send(services, caller, uid=uid, op="create", data=body)


async def send_update(
    services: Services,
    caller: Principal | TokenCheck,
    *,
    uid: str,
    strategy_id: int,
    body: StrategyFields,
) -> CommandAnswer:
    # validated as a StrategyUpdate with the command, after the token check (an id the path
    # allows but the wire does not, above 2^53, is a 422 naming data.id)
    data = {"id": strategy_id, **body.model_dump(exclude_unset=True)}
    return await _send(services, caller, uid=uid, op="update", data=data)


async def send_delete(
    services: Services, caller: Principal | TokenCheck, *, uid: str, strategy_id: int
) -> CommandAnswer:
    return await _send(services, caller, uid=uid, op="delete", data={"id": strategy_id})


async def send_replace(
    services: Services, caller: Principal | TokenCheck, *, uid: str, body: list[StrategyItem]
) -> CommandAnswer:
    return await _send(services, caller, uid=uid, op="update_all", data=body)


async def send_reconcile(services: Services, caller: Principal, *, uid: str) -> CommandAnswer:
    row = await devices.get_device(services.db, uid=uid)
    if row.desired is None:
        raise ConflictError(f"device {uid!r} has no desired set: apply strategies first")
    wanted = desired_set.from_documents(row.desired)
    if not wanted:
        raise ConflictError(f"device {uid!r}: the desired set is empty, nothing to re-apply")
    reported = desired_set.from_reported(row.last_list or [])
    items = desired_set.reconcile_items(wanted, reported)
    return await _send(services, caller, uid=uid, op="update_all", data=items, purpose="reconcile")


# The routes: a command route takes the request (services_of) rather than ServicesDep, and its
# caller as a Commanding token: fewer dependencies for FastAPI to solve on the hot path.


@router.get("/strategies")
async def list_strategies(
    services: ServicesDep, _user: Viewer, uid: str
) -> list[StreamingOverDemand]:
    """The strategies as the EMS last reported them (list/post or sync)."""
    row = await devices.get_device(services.db, uid=uid)
    return [StreamingOverDemand.model_validate(s) for s in row.last_list or []]


@router.post("/strategies", status_code=status.HTTP_201_CREATED)
async def create_strategy(
    request: Request, caller: Commanding, uid: str, body: StrategyCreate
) -> CommandAnswer:
    """create: the answer's ``data`` is ``{"id": N}``, the id the EMS assigned."""
    return await send_create(services_of(request), caller, uid=uid, body=body)


@router.patch("/strategies/{strategy_id}")
async def update_strategy(
    request: Request, caller: Commanding, uid: str, strategy_id: StrategyId, body: StrategyFields
) -> CommandAnswer:
    """update: fields present replace the stored ones, absent ones are kept (merge)."""
    services = services_of(request)
    return await send_update(services, caller, uid=uid, strategy_id=strategy_id, body=body)


@router.delete("/strategies/{strategy_id}")
async def delete_strategy(
    request: Request, caller: Commanding, uid: str, strategy_id: StrategyId
) -> CommandAnswer:
    return await send_delete(services_of(request), caller, uid=uid, strategy_id=strategy_id)


@router.put("/strategies")
async def replace_strategies(
    request: Request,
    caller: Commanding,
    uid: str,
    body: Annotated[list[StrategyItem], Body(min_length=1)],
) -> CommandAnswer:
    """update_all: batch upsert, all or nothing; strategies not named are kept."""
    return await send_replace(services_of(request), caller, uid=uid, body=body)


@router.post("/sync")
async def sync_strategies(request: Request, caller: Commanding, uid: str) -> CommandAnswer:
    """sync: the answer's ``data`` is the full list (it also becomes the reported set)."""
    return await _send(services_of(request), caller, uid=uid, op="sync", data=None)


@router.post("/reconcile")
async def reconcile(request: Request, user: Operator, uid: str) -> CommandAnswer:
    """Re-apply the desired set with one update_all (409 if no set was ever applied)."""
    return await send_reconcile(services_of(request), user, uid=uid)
