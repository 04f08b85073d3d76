"""How the SQL store runs a transaction: a callable on a sync Connection, in one go.

The store's queries are plain functions ``fn(connection) -> result`` (see :mod:`.sql`); a runner
executes one of them inside one transaction and hands back the result:

* :class:`SqliteThreadRunner`: SQLite has no network to wait on, only the disk. The file is
  opened with the stdlib driver on one dedicated thread that owns the connection (the one
  writer), and a whole transaction is one hop to that thread. Through aiosqlite every statement
  costs several thread hops (cursor, execute, fetch, close: about 0.4 ms per statement here),
  which held a create command to ~500 commits/s; one hop per commit gives several thousand.
* :class:`AsyncEngineRunner`: PostgreSQL through asyncpg, ``AsyncConnection.run_sync``; the
  statements are awaited network round trips, no threads involved.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from gridguard.store.urls import sqlite_file

T = TypeVar("T")


class Runner(Protocol):
    """Runs store functions on a database, each in its own transaction."""

    async def start(self) -> None:
        """Connect (raising the driver's error if the database cannot be reached)."""
        ...

    async def run(self, fn: Callable[[Connection], T], *, write: bool) -> T:
        """``fn(connection)`` in one transaction, committed if ``write`` and it returns."""
        ...

    async def stop(self) -> None:
        """Close the connections; the runner cannot be started again."""
        ...


def make_runner(url: sa.URL, *, busy_timeout_ms: int) -> Runner:
    """The runner for a SQLite (sync driver on a thread) or PostgreSQL (asyncpg) URL."""
    if url.get_backend_name() == "sqlite":
        return SqliteThreadRunner(url, busy_timeout_ms=busy_timeout_ms)
    return AsyncEngineRunner(url)


class SqliteThreadRunner:
    """One thread, one stdlib sqlite3 connection, one transaction per :meth:`run` call."""

    def __init__(self, url: sa.URL, *, busy_timeout_ms: int) -> None:
        self._url = url.set(drivername="sqlite+pysqlite")
        self._busy_timeout_ms = busy_timeout_ms
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gridguard-store")
        self._engine: sa.Engine | None = None
        self._connection: Connection | None = None

    async def start(self) -> None:
        await self._call(self._connect)

    async def run(self, fn: Callable[[Connection], T], *, write: bool) -> T:  # noqa: ARG002
        # Reads run in a transaction too: one snapshot, released at once; costs no fsync.
        return await self._call(partial(self._transaction, fn))

    async def stop(self) -> None:
        try:
            await self._call(self._disconnect)
        finally:
            self._thread.shutdown(wait=True)

    async def _call(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn)

    def _connect(self) -> None:
        file = sqlite_file(self._url)
        if file is not None:
            file.parent.mkdir(parents=True, exist_ok=True)
        # NullPool: the runner holds its one connection itself, for its whole life.
        engine = sa.create_engine(self._url, poolclass=sa.NullPool)
        sa.event.listen(
            engine, "connect", partial(set_sqlite_pragmas, busy_timeout_ms=self._busy_timeout_ms)
        )
        try:
            self._connection = engine.connect()
        except BaseException:
            engine.dispose()
            raise
        self._engine = engine

    def _transaction(self, fn: Callable[[Connection], T]) -> T:
        if self._connection is None:
            raise RuntimeError("runner not started")
        with self._connection.begin():
            return fn(self._connection)

    def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        engine, self._engine = self._engine, None
        if connection is not None:
            connection.close()
        if engine is not None:
            engine.dispose()


class AsyncEngineRunner:
    """An async engine (asyncpg) and its pool; each :meth:`run` checks out a connection."""

    def __init__(self, url: sa.URL) -> None:
        self._engine: AsyncEngine = create_async_engine(url)

    async def start(self) -> None:
        async with self._engine.connect():
            pass

    async def run(self, fn: Callable[[Connection], T], *, write: bool) -> T:
        if write:
            async with self._engine.begin() as conn:
                return await conn.run_sync(fn)
        async with self._engine.connect() as conn:
            return await conn.run_sync(fn)

    async def stop(self) -> None:
        await self._engine.dispose()


def set_sqlite_pragmas(dbapi_connection: Any, _record: Any, *, busy_timeout_ms: int) -> None:
    """Durable, one-writer SQLite on every new connection: WAL, fsync on every commit (FULL),
    wait up to ``busy_timeout_ms`` for another process's lock, enforce foreign keys."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()
