"""Request dependencies: the services, the caller (bearer token) and role checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from fastapi.security import HTTPBearer

from gridguard.clock import Clock
from gridguard.platform.commands import Actor, Commander
from gridguard.platform.database import Database
from gridguard.platform.errors import UnauthorizedError
from gridguard.platform.security import LoginLimiter, Role
from gridguard.platform.settings import Settings
from gridguard.platform.users import Principal, TokenCheck, authenticate


@dataclass(frozen=True, slots=True)
class Services:
    """Everything a route needs, built once at start-up (run.py) and kept on ``app.state``."""

    settings: Settings
    db: Database
    commander: Commander
    clock: Clock
    limiter: LoginLimiter


def services_of(request: Request) -> Services:
    """:data:`ServicesDep` without a dependency to solve, for the command routes (hot paths)."""
    services: Services = request.app.state.services
    return services


async def get_services(request: Request) -> Services:
    """async: FastAPI runs a plain ``def`` dependency in a worker thread, a hop per request."""
    return services_of(request)


ServicesDep = Annotated[Services, Depends(get_services)]


class _Caller(HTTPBearer):
    """The bearer token, its check and the role check in one dependency: FastAPI solves one
    node per request instead of four (role check, caller, services, bearer scheme; solving
    them was a fifth of the platform's CPU per command). To OpenAPI it is the same
    ``HTTPBearer`` scheme as before (same name, same description)."""

    def __init__(self, role: Role) -> None:
        super().__init__(auto_error=False, scheme_name="HTTPBearer", description=_BEARER)
        self.role = role

    async def __call__(self, request: Request) -> Principal:  # type: ignore[override]
        return await authenticate(
            services_of(request).db, token=bearer_token(request), role=self.role
        )


class _Deferred(_Caller):
    """:class:`_Caller` for a command route: the token is looked up inside the command's own
    insert transaction (:meth:`TokenCheck.principal_in`, before the device and the body are
    looked at), not in a read of its own first. A request refused before that transaction
    (its path or body invalid) has its token checked first by :func:`caller_first`, so the
    answers stay those of :class:`_Caller`: 401 / 403 before 422."""

    async def __call__(self, request: Request) -> TokenCheck:  # type: ignore[override]
        check = TokenCheck.of(bearer_token(request), self.role)
        request.scope[_UNCHECKED] = check
        return check


_UNCHECKED = "gridguard.token_check"
_BEARER = "an API token: Authorization: Bearer ggp_…"


def bearer_token(request: Request) -> str:
    """The token of ``Authorization: Bearer <token>`` (as ``HTTPBearer`` reads it), else a
    401."""
    scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
    token = token.strip()
    if not (scheme and token) or scheme.lower() != "bearer":
        raise UnauthorizedError("missing token: send Authorization: Bearer <token>")
    return token


async def caller_first(request: Request) -> None:
    """For a request refused before its command's transaction: its deferred token check, if
    any, now (UnauthorizedError / ForbiddenError win over the refusal, as without deferral)."""
    check = request.scope.get(_UNCHECKED)
    if isinstance(check, TokenCheck):
        await check.principal(services_of(request).db)


Viewer = Annotated[Principal, Depends(_Caller(Role.VIEWER))]
Operator = Annotated[Principal, Depends(_Caller(Role.OPERATOR))]
Admin = Annotated[Principal, Depends(_Caller(Role.ADMIN))]
Commanding = Annotated[TokenCheck, Depends(_Deferred(Role.OPERATOR))]
"""An operator's token, checked in the command's insert transaction (the command routes)."""


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
