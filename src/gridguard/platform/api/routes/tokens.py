"""API tokens: create (shown once), list, revoke (effective on the next request)."""

from __future__ import annotations

from fastapi import APIRouter, status

from gridguard.platform import audit, users
from gridguard.platform.api.deps import RowId, ServicesDep, Viewer
from gridguard.platform.models import TokenCreate, TokenCreated, TokenPublic
from gridguard.platform.security import Role

router = APIRouter(prefix="/api/tokens", tags=["tokens"])


@router.get("")
async def list_tokens(
    services: ServicesDep, user: Viewer, every: bool = False
) -> list[TokenPublic]:
    """Your tokens; ``every=true`` (admin) lists every user's."""
    owner = None if every and user.role.allows(Role.ADMIN) else user.user_id
    return await users.list_tokens(services.db, user_id=owner)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_token(services: ServicesDep, user: Viewer, body: TokenCreate) -> TokenCreated:
    made = await users.create_token(
        services.db, user_id=user.user_id, name=body.name, now=services.clock.now()
    )
    await audit.record(
        services.db,
        who=user,
        action="token.create",
        target=str(made.id),
        now=services.clock.now(),
        detail={"name": body.name},
    )
    return made


@router.delete("/{token_id}")
async def revoke_token(services: ServicesDep, user: Viewer, token_id: RowId) -> TokenPublic:
    """Revoke one of your tokens (an admin may revoke anyone's)."""
    owner = None if user.role.allows(Role.ADMIN) else user.user_id
    revoked = await users.revoke_token(
        services.db, token_id=token_id, owner_id=owner, now=services.clock.now()
    )
    await audit.record(
        services.db, who=user, action="token.revoke", target=str(token_id), now=services.clock.now()
    )
    return revoked
