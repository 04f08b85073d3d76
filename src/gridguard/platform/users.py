"""Users and API tokens: keyword-only service functions over the platform's database."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gridguard.platform.database import Database, aware, utc
from gridguard.platform.errors import (
    ConflictError,
    ForbiddenError,
    NotFoundError,
    TooManyAttemptsError,
    UnauthorizedError,
)
from gridguard.platform.models import TokenCreated, TokenPublic, UserPublic
from gridguard.platform.schema import login_failures, tokens, users
from gridguard.platform.security import (
    LoginLimiter,
    Role,
    hash_password,
    login_key,
    new_token,
    token_hash,
    token_hint,
    verify_password,
)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the user behind a valid, unrevoked token."""

    user_id: int
    name: str
    role: Role
    token_id: int


def _user(row: sa.Row[tuple[object, ...]]) -> UserPublic:
    m = row._mapping  # noqa: SLF001 - SQLAlchemy's public row mapping
    return UserPublic(
        id=m["id"], name=m["name"], role=Role(m["role"]), created_at=aware(m["created_at"])
    )


def _token(row: sa.Row[tuple[object, ...]]) -> TokenPublic:
    m = row._mapping  # noqa: SLF001
    return TokenPublic(
        id=m["id"],
        user_id=m["user_id"],
        name=m["name"],
        hint=m["hint"],
        created_at=aware(m["created_at"]),
        revoked_at=aware(m["revoked_at"]),
    )


async def create_user(
    db: Database, *, name: str, password: str, role: Role, now: datetime
) -> UserPublic:
    password_hash = await asyncio.to_thread(hash_password, password)
    async with db.write() as conn:
        taken = await conn.scalar(sa.select(users.c.id).where(users.c.name == name))
        if taken is not None:
            raise ConflictError(f"user {name!r} already exists")
        result = await conn.execute(
            sa.insert(users)
            .values(name=name, password_hash=password_hash, role=role.value, created_at=now)
            .returning(*users.c)
        )
        return _user(result.one())


async def list_users(db: Database) -> list[UserPublic]:
    async with db.read() as conn:
        rows = await conn.execute(sa.select(*users.c).order_by(users.c.id))
        return [_user(r) for r in rows]


async def get_user(db: Database, *, user_id: int) -> UserPublic:
    async with db.read() as conn:
        row = (await conn.execute(sa.select(*users.c).where(users.c.id == user_id))).first()
    if row is None:
        raise NotFoundError(f"user {user_id} not found")
    return _user(row)


async def update_user(
    db: Database, *, user_id: int, password: str | None, role: Role | None
) -> UserPublic:
    values: dict[str, str] = {}
    if password is not None:
        values["password_hash"] = await asyncio.to_thread(hash_password, password)
    if role is not None:
        values["role"] = role.value
    async with db.write() as conn:
        if values:
            await conn.execute(sa.update(users).where(users.c.id == user_id).values(**values))
        if password is not None:  # a new password ends every session of the old one
            await conn.execute(
                sa.update(tokens)
                .where(tokens.c.user_id == user_id, tokens.c.revoked_at.is_(None))
                .values(revoked_at=sa.func.now())
            )
    return await get_user(db, user_id=user_id)


async def delete_user(db: Database, *, user_id: int) -> None:
    async with db.write() as conn:
        await conn.execute(sa.delete(tokens).where(tokens.c.user_id == user_id))
        result = await conn.execute(sa.delete(users).where(users.c.id == user_id))
    if result.rowcount == 0:
        raise NotFoundError(f"user {user_id} not found")


async def create_token(db: Database, *, user_id: int, name: str, now: datetime) -> TokenCreated:
    token = new_token()
    async with db.write() as conn:
        result = await conn.execute(
            sa.insert(tokens)
            .values(
                user_id=user_id,
                name=name,
                token_hash=token_hash(token),
                hint=token_hint(token),
                created_at=now,
            )
            .returning(*tokens.c)
        )
        public = _token(result.one())
    return TokenCreated(**public.model_dump(), token=token)


async def list_tokens(db: Database, *, user_id: int | None) -> list[TokenPublic]:
    query = sa.select(*tokens.c).order_by(tokens.c.id)
    if user_id is not None:
        query = query.where(tokens.c.user_id == user_id)
    async with db.read() as conn:
        return [_token(r) for r in await conn.execute(query)]


async def revoke_token(
    db: Database, *, token_id: int, owner_id: int | None, now: datetime
) -> TokenPublic:
    """Revoke at once (the next request with it fails); ``owner_id`` None = any owner (admin)."""
    where = [tokens.c.id == token_id]
    if owner_id is not None:
        where.append(tokens.c.user_id == owner_id)
    async with db.write() as conn:
        row = (await conn.execute(sa.select(*tokens.c).where(*where))).first()
        if row is None:
            raise NotFoundError(f"token {token_id} not found")
        if row.revoked_at is None:
            await conn.execute(sa.update(tokens).where(*where).values(revoked_at=now))
        row = (await conn.execute(sa.select(*tokens.c).where(*where))).one()
    return _token(row)


_BY_TOKEN = (
    sa.select(users.c.id, users.c.name, users.c.role, tokens.c.id.label("token_id"))
    .select_from(tokens.join(users, tokens.c.user_id == users.c.id))
    .where(tokens.c.token_hash == sa.bindparam("p_hash"), tokens.c.revoked_at.is_(None))
)
"""Built once: it runs on every request."""


def check_role(principal: Principal, needed: Role) -> Principal:
    if not principal.role.allows(needed):
        raise ForbiddenError(f"role {principal.role.value} may not do this: needs {needed.value}")
    return principal


@dataclass(frozen=True, slots=True)
class TokenCheck:
    """A bearer token not looked up yet and the role it needs: :meth:`principal_in` checks it
    inside a transaction of the caller's (a command's insert: one transaction, one thread hop
    on SQLite, instead of a read of its own first)."""

    digest: str
    role: Role

    @classmethod
    def of(cls, token: str, role: Role) -> TokenCheck:
        return cls(token_hash(token), role)

    def principal_in(self, conn: Connection) -> Principal:
        """The caller, or UnauthorizedError / ForbiddenError (exactly as :func:`authenticate`
        and a role check would)."""
        row = conn.execute(_BY_TOKEN, {"p_hash": self.digest}).first()
        if row is None:
            raise UnauthorizedError("missing, unknown or revoked token")
        principal = Principal(
            user_id=row.id, name=row.name, role=Role(row.role), token_id=row.token_id
        )
        return check_role(principal, self.role)

    async def principal(self, db: Database) -> Principal:
        """:meth:`principal_in` on a read connection of its own."""
        return await db.run_read(self.principal_in)


async def authenticate(db: Database, *, token: str, role: Role = Role.VIEWER) -> Principal:
    """The caller behind ``token``, with at least ``role``: one indexed lookup of its SHA-256
    on every request, so a revocation made through any instance stops the token at once (a
    cache of checked tokens was tried and dropped: another instance would have honoured a
    revoked token for its TTL)."""
    return await TokenCheck.of(token, role).principal(db)


async def login(
    db: Database,
    limiter: LoginLimiter,
    *,
    name: str,
    password: str,
    client: str,
    now: datetime,
) -> TokenCreated:
    """A new session token for a correct name and password; rate-limited per name and client.

    The failures are counted in the database, so the limit holds across every instance.
    """
    key = login_key(name, client)
    since = limiter.window_start(now)
    async with db.read() as conn:
        failures_at = [
            utc(at)
            for at in (
                await conn.execute(
                    sa.select(login_failures.c.at).where(
                        login_failures.c.key_hash == key, login_failures.c.at > since
                    )
                )
            ).scalars()
        ]
        row = (
            await conn.execute(
                sa.select(users.c.id, users.c.password_hash).where(users.c.name == name)
            )
        ).first()
    wait_s = limiter.retry_after_s(failures_at, now)
    if wait_s > 0:
        raise TooManyAttemptsError(
            f"too many failed logins: try again in {wait_s:.0f} s", retry_after_s=wait_s
        )
    stored = row.password_hash if row else None
    if not await asyncio.to_thread(verify_password, password, stored) or row is None:
        async with db.write() as conn:
            await conn.execute(
                sa.delete(login_failures).where(
                    login_failures.c.key_hash == key, login_failures.c.at <= since
                )
            )
            await conn.execute(sa.insert(login_failures).values(key_hash=key, at=now))
        raise UnauthorizedError("wrong user name or password")
    if failures_at:  # a success clears the count (older rows go with the next failure)
        async with db.write() as conn:
            await conn.execute(sa.delete(login_failures).where(login_failures.c.key_hash == key))
    return await create_token(db, user_id=row.id, name="login", now=now)
