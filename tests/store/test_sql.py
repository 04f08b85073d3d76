"""What only the SQL store has: migrations, SQLite durability settings, driver errors."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from gridguard.store import StoredReply, StoredStrategy, StoreError
from gridguard.store.migrate import (
    HEAD_REVISION,
    alembic_config,
    current_revision,
    head_revision,
    upgrade_to_head,
)
from gridguard.store.runners import WRITER_AUTOCHECKPOINT_PAGES, SqliteRunner
from gridguard.store.schema import COUNTERS_ROW_ID, metadata, replies, store_counters
from gridguard.store.sql import Sqlite3Statement, SqlStrategyStore
from gridguard.store.urls import async_url
from gridguard.testing.wait import wait_for
from tests.store.conftest import Backend

pytestmark = pytest.mark.integration

REPLY = StoredReply("m-1", "create", b'{"code":200}')
ONE = StoredStrategy(1, 7, 2, {"streaming_status": 1})
GRIDGUARD_TABLES = {"alembic_version", "replies", "state", "store_counters", "strategies"}


@pytest.fixture
async def inspector_engine(sql_backend: Backend) -> AsyncIterator[AsyncEngine]:
    """A separate engine on the backend's database, to look at it from outside the store."""
    engine = create_async_engine(async_url(sql_backend.url))
    yield engine
    await engine.dispose()


async def test_sqlite_pragmas_in_force(tmp_path: Path) -> None:
    """Every store connection runs WAL, synchronous=FULL, busy_timeout and foreign keys."""
    names = ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")

    def read_pragmas(conn: sa.Connection) -> dict[str, object]:
        return {name: conn.exec_driver_sql(f"PRAGMA {name}").scalar() for name in names}

    async with SqlStrategyStore(str(tmp_path / "p.db"), busy_timeout_ms=1234) as store:
        assert store._runner is not None
        pragmas = await store._runner.run(read_pragmas, write=False)
    assert pragmas == {
        "journal_mode": "wal",
        "synchronous": 2,
        "busy_timeout": 1234,
        "foreign_keys": 1,
    }


async def test_migrations_twice_are_a_no_op(
    sql_backend: Backend, inspector_engine: AsyncEngine
) -> None:
    """Upgrading an up-to-date database changes nothing: same revision, same rows."""
    store = await sql_backend.open()
    await store.commit(reply=REPLY, upserts=[ONE], next_id=2)
    await store.close()
    async with inspector_engine.begin() as conn:
        await conn.run_sync(upgrade_to_head)
        assert await conn.run_sync(current_revision) == head_revision()
        assert (await conn.execute(sa.text("SELECT count(*) FROM alembic_version"))).scalar() == 1
        counters = (await conn.execute(sa.text("SELECT count(*) FROM store_counters"))).scalar()
        assert counters == 1
    again = await sql_backend.open()
    assert await again.list_strategies() == [ONE]
    assert await again.next_id() == 2


async def test_migrations_match_schema(sql_backend: Backend, inspector_engine: AsyncEngine) -> None:
    """The tables the migrations build are the tables the queries are written against."""
    await sql_backend.open()
    async with inspector_engine.connect() as conn:
        diff = await conn.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
        )
        tables = set(await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names()))
    assert diff == []
    assert tables == GRIDGUARD_TABLES


async def test_downgrade_then_upgrade(sql_backend: Backend, inspector_engine: AsyncEngine) -> None:
    """Every revision's downgrade undoes it, so a revision can be rolled back in the field."""
    await sql_backend.open()
    await sql_backend.close_all()
    async with inspector_engine.begin() as conn:
        await conn.run_sync(lambda sync: command.downgrade(alembic_config(sync), "base"))
        tables = set(await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names()))
    assert tables == {"alembic_version"}
    store = await sql_backend.open()
    assert await store.next_id() == 1


async def test_locked_database_is_a_store_error(tmp_path: Path) -> None:
    """Another writer holding the lock past busy_timeout is a StoreError; nothing half-done."""
    path = tmp_path / "locked.db"
    store = SqlStrategyStore(str(path), busy_timeout_ms=50)
    await store.open()
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreError, match="locked"):
            await store.commit(reply=REPLY, upserts=[ONE], next_id=2)
        other.execute("ROLLBACK")
        assert await store.get_reply("m-1") is None
        await store.commit(reply=REPLY, upserts=[ONE], next_id=2)
        assert await store.list_strategies() == [ONE]
    finally:
        other.close()
        await store.close()


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("postgresql://postgres@127.0.0.1:1/test", r"127\.0\.0\.1:1.*Connect call failed"),
        ("{tmp}/corrupt.db", "file is not a database"),
        ("{tmp}/file/below-a-file.db", "File exists|Not a directory"),
    ],
    ids=["connection-refused", "corrupt-file", "folder-is-a-file"],
)
async def test_open_failures_are_store_errors(tmp_path: Path, url: str, match: str) -> None:
    """open() turns every driver failure into a readable StoreError (a 500, D3)."""
    (tmp_path / "corrupt.db").write_bytes(b"not sqlite at all " * 512)
    (tmp_path / "file").write_text("")
    store = SqlStrategyStore(url.format(tmp=tmp_path))
    with pytest.raises(StoreError, match=match) as caught:
        await store.open()
    assert caught.value.__cause__ is not None
    with pytest.raises(StoreError, match="not open"):
        await store.next_id()


@pytest.mark.postgres
async def test_unknown_role_is_a_store_error(postgres_url: str) -> None:
    """A server that refuses the login is a StoreError naming the role."""
    url = sa.make_url(postgres_url).set(username="gridguard_nobody")
    store = SqlStrategyStore(url.render_as_string(hide_password=False))
    with pytest.raises(StoreError, match='role "gridguard_nobody" does not exist'):
        await store.open()


@pytest.mark.parametrize(
    ("url", "file"),
    [
        ("data/edge.db", "data/edge.db"),
        ("sqlite:///var/lib/edge.db", "var/lib/edge.db"),
        ("sqlite+aiosqlite:///nested/a/b/edge.db", "nested/a/b/edge.db"),
    ],
    ids=["bare-path", "sqlite-relative", "explicit-driver"],
)
async def test_sqlite_file_and_folders_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, file: str
) -> None:
    """Relative paths are relative to the working folder; missing folders are made."""
    monkeypatch.chdir(tmp_path)
    async with SqlStrategyStore(url) as store:
        await store.commit(reply=REPLY)
    assert (tmp_path / file).is_file()


async def test_sqlite_absolute_url(tmp_path: Path) -> None:
    """sqlite:////abs/path.db names an absolute path."""
    path = tmp_path / "abs" / "edge.db"
    async with SqlStrategyStore(f"sqlite:///{path}") as store:
        await store.commit(reply=REPLY)
    assert path.is_file()
    assert str(path).startswith("/")


def test_sqlite3_statements_are_the_core_statements_compiled() -> None:
    """The commit's hot path runs SQL that SQLAlchemy compiled from the same Core statements;
    a missing parameter is a KeyError naming it, never a silent NULL."""
    insert = Sqlite3Statement.compile(sa.insert(replies), ["seq", "mid", "op", "payload"])
    assert insert.sql == "INSERT INTO replies (seq, mid, op, payload) VALUES (?, ?, ?, ?)"
    values = {"seq": 3, "mid": "m", "op": "update", "payload": b"x"}
    assert insert.args(values) == (3, "m", "update", b"x")
    with pytest.raises(KeyError, match="payload"):
        insert.args({"seq": 3, "mid": "m", "op": "update"})
    bump = Sqlite3Statement.compile(
        sa.update(store_counters)
        .where(store_counters.c.id == COUNTERS_ROW_ID)
        .values(reply_seq=store_counters.c.reply_seq + sa.bindparam("n"))
    )
    assert bump.args({"n": 2}) == (2, COUNTERS_ROW_ID)  # the WHERE literal is a constant


async def test_writer_checkpoints_only_a_large_wal(tmp_path: Path) -> None:
    """The writer's own checkpoint waits for 10,000 WAL pages, not SQLite's 1,000: below
    that, a commit never pays for copying the WAL back (the idle checkpointer does)."""
    async with SqlStrategyStore(str(tmp_path / "w.db")) as store:
        assert store._runner is not None
        pages = await store._runner.run(
            lambda conn: conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar(), write=False
        )
    assert pages == WRITER_AUTOCHECKPOINT_PAGES == 10_000


async def test_idle_checkpointer_copies_the_wal_once_commits_pause(tmp_path: Path) -> None:
    """Commits land in the WAL; after a pause the checkpointer thread copies them into the
    database file (which grows from the WAL's pages); it stops with the store."""
    file = tmp_path / "c.db"
    url = sa.make_url(f"sqlite:///{file}")
    runner = SqliteRunner(url, busy_timeout_ms=1000, checkpoint_idle_s=0.05)
    await runner.start()
    try:
        await runner.run(upgrade_to_head, write=True)
        size_before = file.stat().st_size
        for n in range(20):

            def insert(raw: sqlite3.Connection, n: int = n) -> sqlite3.Cursor:
                return raw.execute("INSERT INTO state (key, value) VALUES (?, '{}')", (f"k{n}",))

            await runner.run_sqlite3(insert)
        await wait_for(
            lambda: file.stat().st_size > size_before, 5, "the WAL copied into the file"
        )  # a pause of 0.05 s, then the copy
    finally:
        await runner.stop()
    assert "sqlite-checkpoint" not in {t.name for t in threading.enumerate()}


def test_the_head_revision_constant_is_the_newest_shipped_migration() -> None:
    """Start-up skips Alembic when the database is at HEAD_REVISION: it must be the head."""
    assert head_revision() == HEAD_REVISION


OPEN_TWICE = """
import asyncio, sys
from gridguard.store.sql import SqlStrategyStore

async def main(url):
    for _ in range(2):
        store = SqlStrategyStore(url)
        await store.open()
        await store.list_strategies()
        await store.close()
        print(sorted(m for m in ("alembic", "asyncpg", "mako") if m in sys.modules))

asyncio.run(main(sys.argv[1]))
"""


def test_an_up_to_date_sqlite_store_opens_without_alembic_or_asyncpg(tmp_path: Path) -> None:
    """Start-up cost: a SQLite site never loads asyncpg, and Alembic only to migrate (the
    first open creates the schema; the second, at head, reads the version row only)."""
    url = f"sqlite:///{tmp_path / 'edge.db'}"
    done = subprocess.run(
        [sys.executable, "-c", OPEN_TWICE, url],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    first, second = done.stdout.splitlines()
    assert "asyncpg" not in first
    assert "alembic" in first
    assert second == first  # nothing more was loaded by the second open
    fresh = subprocess.run(
        [sys.executable, "-c", OPEN_TWICE.replace("range(2)", "range(1)"), url],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert fresh.stdout.strip() == "[]"
