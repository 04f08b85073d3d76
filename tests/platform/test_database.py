"""Database.run_write / run_read: one function, one transaction, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

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


async def test_writes_queued_together_each_succeed_or_fail_alone(db_url: str) -> None:
    """Concurrent run_write calls (grouped into one COMMIT on SQLite): the one that raises
    leaves nothing, every other is stored, and each caller gets its own outcome."""
    db = Database(db_url)
    await db.open()
    try:

        def write(n: int) -> Callable[[Connection], int]:
            def work(conn: Connection) -> int:
                conn.execute(_insert(f"gg-{n}"))
                if n == 3:
                    raise LookupError("gg-3 refused")
                return n

            return work

        outcomes = await asyncio.gather(
            *(db.run_write(write(n)) for n in range(8)), return_exceptions=True
        )
        assert [o if isinstance(o, int) else repr(o) for o in outcomes] == [
            0,
            1,
            2,
            "LookupError('gg-3 refused')",
            4,
            5,
            6,
            7,
        ]
        assert await db.run_read(_uids) == [f"gg-{n}" for n in (0, 1, 2, 4, 5, 6, 7)]
    finally:
        await db.close()


async def test_sqlite_writes_queued_behind_a_commit_share_the_next_one(tmp_path: Path) -> None:
    """Group commit: writes queued together share one COMMIT (one fsync)."""
    db = Database(f"sqlite:///{tmp_path / 'platform.db'}")
    await db.open()
    commits: list[int] = []
    try:
        engine = db._sync_writes  # the engine whose COMMITs are counted
        assert engine is not None
        sa.event.listen(engine, "commit", lambda _conn: commits.append(1))

        def insert(n: int) -> Callable[[Connection], None]:
            def work(conn: Connection) -> None:
                conn.execute(_insert(f"gg-{n}"))

            return work

        await asyncio.gather(*(db.run_write(insert(n)) for n in range(10)))
        assert await db.run_read(_uids) == sorted(f"gg-{n}" for n in range(10))
        assert len(commits) == 1  # all ten were queued before the first began
    finally:
        await db.close()
