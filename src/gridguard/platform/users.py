"""Users and API tokens: keyword-only service functions over the platform's database."""

from __future__ import annotations

import asyncio
import time
import weakref
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from gridguard.platform.database import Database, aware
from gridguard.platform.errors import (
    ConflictError,
    NotFoundError,
    TooManyAttemptsError,
    UnauthorizedError,
)
from gridguard.platform.models import TokenCreated, TokenPublic, UserPublic
from gridguard.platform.schema import tokens, users
from gridguard.platform.security import (
    LoginLimiter,
    Role,
    hash_password,
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
    _forget_tokens(db)  # after the commit: nothing re-reads the old state into the cache
    return await get_user(db, user_id=user_id)


async def delete_user(db: Database, *, user_id: int) -> None:
    async with db.write() as conn:
        await conn.execute(sa.delete(tokens).where(tokens.c.user_id == user_id))
        result = await conn.execute(sa.delete(users).where(users.c.id == user_id))
    _forget_tokens(db)
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
    _forget_tokens(db)
    return _token(row)


TOKEN_CACHE_S = 2.0
"""How long a checked token is trusted without asking the database again. A revocation, a
password or role change or a deletion made through this instance empties the cache at once; one
made through another instance takes effect here within this time."""


class _TokenCache:
    """token SHA-256 -> (caller, monotonic expiry); never holds the token itself."""

    def __init__(self) -> None:
        self.entries: dict[str, tuple[Principal, float]] = {}
        self.generation = 0
        """Bumped by every forget: a lookup that started before one is not cached."""

    def get(self, digest: str) -> Principal | None:
        hit = self.entries.get(digest)
        if hit is None or hit[1] < time.monotonic():
            return None
        return hit[0]

    def put(self, digest: str, principal: Principal) -> None:
        if len(self.entries) > 10_000:
            self.entries.clear()
        self.entries[digest] = (principal, time.monotonic() + TOKEN_CACHE_S)


_caches: weakref.WeakKeyDictionary[Database, _TokenCache] = weakref.WeakKeyDictionary()


def _cache(db: Database) -> _TokenCache:
    cache = _caches.get(db)
    if cache is None:
        cache = _caches[db] = _TokenCache()
    return cache


def _forget_tokens(db: Database) -> None:
    cache = _cache(db)
    cache.generation += 1
    cache.entries.clear()


async def authenticate(db: Database, *, token: str) -> Principal:
    """The caller behind ``token`` (one indexed lookup of its SHA-256, cached briefly)."""
    digest, cache = token_hash(token), _cache(db)
    cached, generation = cache.get(digest), cache.generation
    if cached is not None:
        return cached
    query = (
        sa.select(users.c.id, users.c.name, users.c.role, tokens.c.id.label("token_id"))
        .select_from(tokens.join(users, tokens.c.user_id == users.c.id))
        .where(tokens.c.token_hash == digest, tokens.c.revoked_at.is_(None))
    )
    row = await db.run_read(lambda conn: conn.execute(query).first())
    if row is None:
        raise UnauthorizedError("missing, unknown or revoked token")
    principal = Principal(user_id=row.id, name=row.name, role=Role(row.role), token_id=row.token_id)
    if cache.generation == generation:
        cache.put(digest, principal)
    return principal


async def login(
    db: Database,
    limiter: LoginLimiter,
    *,
    name: str,
    password: str,
    client: str,
    now: datetime,
) -> TokenCreated:
    """A new session token for a correct name and password; rate-limited per name and client."""
    key = f"{name}\x00{client}"
    wait_s = limiter.retry_after_s(key)
    if wait_s > 0:
        raise TooManyAttemptsError(
            f"too many failed logins: try again in {wait_s:.0f} s", retry_after_s=wait_s
        )
    async with db.read() as conn:
        row = (
            await conn.execute(
                sa.select(users.c.id, users.c.password_hash).where(users.c.name == name)
            )
        ).first()
    stored = row.password_hash if row else None
    if not await asyncio.to_thread(verify_password, password, stored) or row is None:
        limiter.failed(key)
        raise UnauthorizedError("wrong user name or password")
    limiter.succeeded(key)
    return await create_token(db, user_id=row.id, name="login", now=now)
