"""Login (a session token for name and password, rate-limited) and who am I."""

from __future__ import annotations

from fastapi import APIRouter, Request

from gridguard.platform import users
from gridguard.platform.api.deps import ServicesDep, Viewer
from gridguard.platform.models import LoginRequest, TokenCreated, UserPublic

router = APIRouter(prefix="/api/auth", tags=["auth"])


@router.post("/login")
async def login(services: ServicesDep, body: LoginRequest, request: Request) -> TokenCreated:
    client = request.client.host if request.client else "unknown"
    return await users.login(
        services.db,
        services.limiter,
        name=body.name,
        password=body.password.get_secret_value(),
        client=client,
        now=services.clock.now(),
    )


@router.get("/me")
async def me(services: ServicesDep, user: Viewer) -> UserPublic:
    return await users.get_user(services.db, user_id=user.user_id)
