"""Login (a session token for name and password, rate-limited) and who am I."""

from __future__ import annotations

from fastapi import APIRouter, Request

from gridguard.platform import audit, users
from gridguard.platform.api.deps import ServicesDep, Viewer
from gridguard.platform.errors import TooManyAttemptsError, UnauthorizedError
from gridguard.platform.models import LoginRequest, TokenCreated, UserPublic

router = APIRouter(prefix="/api/auth", tags=["auth"])


@router.post("/login")
async def login(services: ServicesDep, body: LoginRequest, request: Request) -> TokenCreated:
    """A session token for a right name and password (failures are audited and rate-limited)."""
    client = request.client.host if request.client else "unknown"
    try:
        token = await users.login(
            services.db,
            services.limiter,
            name=body.name,
            password=body.password.get_secret_value(),
            client=client,
            now=services.clock.now(),
        )
    except (UnauthorizedError, TooManyAttemptsError) as exc:
        await _audit(services, body.name, "auth.login_failed", client, reason=type(exc).__name__)
        raise
    await _audit(services, body.name, "auth.login", client, token_id=token.id)
    return token


async def _audit(
    services: ServicesDep, name: str, action: str, client: str, **detail: object
) -> None:
    await audit.record(
        services.db,
        who=None,
        user_name=name,
        action=action,
        target=name,
        now=services.clock.now(),
        detail={"client": client, **detail},
    )


@router.get("/me")
async def me(services: ServicesDep, user: Viewer) -> UserPublic:
    return await users.get_user(services.db, user_id=user.user_id)
