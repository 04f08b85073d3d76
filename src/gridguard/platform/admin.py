"""Offline administration for ``gridguard platform user add``: straight to the database."""

from __future__ import annotations

from datetime import UTC, datetime

from gridguard.platform.database import Database
from gridguard.platform.models import UserPublic
from gridguard.platform.security import Role
from gridguard.platform.users import create_user


async def add_user(db_url: str, *, name: str, password: str, role: Role) -> UserPublic:
    db = Database(db_url)
    await db.open()
    try:
        return await create_user(db, name=name, password=password, role=role, now=datetime.now(UTC))
    finally:
        await db.close()
