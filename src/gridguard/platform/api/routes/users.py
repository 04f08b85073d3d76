"""Users (admin only)."""

from __future__ import annotations

from fastapi import APIRouter, status

from gridguard.platform import audit, users
from gridguard.platform.api.deps import Admin, RowId, ServicesDep
from gridguard.platform.models import UserCreate, UserPublic, UserUpdate

router = APIRouter(prefix="/api/users", tags=["users"])


@router.get("")
async def list_users(services: ServicesDep, _user: Admin) -> list[UserPublic]:
    return await users.list_users(services.db)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_user(services: ServicesDep, user: Admin, body: UserCreate) -> UserPublic:
    made = await users.create_user(
        services.db,
        name=body.name,
        password=body.password.get_secret_value(),
        role=body.role,
        now=services.clock.now(),
    )
    await audit.record(
        services.db,
        who=user,
        action="user.create",
        target=made.name,
        now=services.clock.now(),
        detail={"id": made.id, "role": made.role.value},
    )
    return made


@router.get("/{user_id}")
async def get_user(services: ServicesDep, _user: Admin, user_id: RowId) -> UserPublic:
    return await users.get_user(services.db, user_id=user_id)


@router.patch("/{user_id}")
async def update_user(
    services: ServicesDep, user: Admin, user_id: RowId, body: UserUpdate
) -> UserPublic:
    """A new password revokes every token of the user."""
    password = body.password.get_secret_value() if body.password else None
    updated = await users.update_user(
        services.db, user_id=user_id, password=password, role=body.role
    )
    detail = {"role": body.role.value if body.role else None, "password_changed": bool(password)}
    await audit.record(
        services.db,
        who=user,
        action="user.update",
        target=str(user_id),
        now=services.clock.now(),
        detail=detail,
    )
    return updated


@router.delete("/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_user(services: ServicesDep, user: Admin, user_id: RowId) -> None:
    await users.delete_user(services.db, user_id=user_id)
    await audit.record(
        services.db, who=user, action="user.delete", target=str(user_id), now=services.clock.now()
    )
