"""Database.run_write / run_read: one function, one transaction, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gridguard.platform.database import Database
from gridguard.platform.schema import devices

pytestmark = pytest.mark.integration
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _insert(uid: str) -> sa.Insert:
    return sa.insert(devices).values(uid=uid, scheme="custom", prefix="acme/ems", created_at=NOW)


def _uids(conn: Connection) -> list[str]:
    return [r.uid for r in conn.execute(sa.select(devices.c.uid).order_by(devices.c.uid))]


async def test_run_write_commits_on_return_and_rolls_back_on_error(db_url: str) -> None:
    db = Database(db_url)
    await db.open()
    try:

        def good(conn: Connection) -> int:
            conn.execute(_insert("gg-1"))
            return 7

        def bad(conn: Connection) -> None:
            conn.execute(_insert("gg-2"))
            raise LookupError("gg-2 refused")

        assert await db.run_write(good) == 7
        with pytest.raises(LookupError, match="gg-2 refused"):
            await db.run_write(bad)
        assert await db.run_read(_uids) == ["gg-1"]
        async with db.read() as conn:  # the async engine sees the same rows
            assert (await conn.scalar(sa.select(sa.func.count()).select_from(devices))) == 1
    finally:
        await db.close()
