"""Request dependencies: the services, the caller (bearer token) and role checks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from gridguard.clock import Clock
from gridguard.platform.commands import Actor, Commander
from gridguard.platform.database import Database
from gridguard.platform.errors import ForbiddenError, UnauthorizedError
from gridguard.platform.security import LoginLimiter, Role
from gridguard.platform.settings import Settings
from gridguard.platform.users import Principal, authenticate


@dataclass(frozen=True, slots=True)
class Services:
    """Everything a route needs, built once at start-up (run.py) and kept on ``app.state``."""

    settings: Settings
    db: Database
    commander: Commander
    clock: Clock
    limiter: LoginLimiter


async def get_services(request: Request) -> Services:
    """async: FastAPI runs a plain ``def`` dependency in a worker thread, a hop per request."""
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]
_bearer = HTTPBearer(auto_error=False, description="an API token: Authorization: Bearer ggp_…")


async def current_principal(
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        raise UnauthorizedError("missing token: send Authorization: Bearer <token>")
    return await authenticate(services.db, token=credentials.credentials)


def require(role: Role) -> Callable[[Principal], Awaitable[Principal]]:
    async def check(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if not principal.role.allows(role):
            raise ForbiddenError(f"role {principal.role.value} may not do this: needs {role.value}")
        return principal

    return check


Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]


def actor(principal: Principal) -> Actor:
    return Actor.of(principal)


MAX_ROW_ID = 2**31 - 1


@dataclass(frozen=True, slots=True)
class Paging:
    offset: int
    limit: int


def paging(
    offset: Annotated[int, Query(ge=0, le=MAX_ROW_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Paging:
    return Paging(offset, limit)


PagingDep = Annotated[Paging, Depends(paging)]


RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="a row id of this platform")]
