"""How the SQL store runs a transaction: a callable on a sync Connection, in one go.

The store's queries are plain functions ``fn(connection) -> result`` (see :mod:`.sql`); a runner
executes one of them inside one transaction and hands back the result:

* :class:`SqliteRunner`: SQLite has no network to wait on, only the disk. The file is opened
  with the stdlib driver, one connection (the one writer), used on the event loop's own thread:
  a transaction runs start to end without yielding, so no other coroutine ever sees it half
  done. Measured on a 2-core VM, a commit is ~0.3-0.5 ms, most of it the fsync; handing it to a
  thread cost more than that: two cross-thread wake-ups (~0.3 ms) and GIL hand-offs with the
  loop that put 3-4 ms spikes into the tail (the agent's p99 round trip fell from 3.5-4.1x to
  2.2-2.5x the raw MQTT echo's without them). Through aiosqlite every statement costs several
  such hops. The price: the loop waits for the fsync. Commands are rare in the field and a
  control cycle delayed by one fsync is within its tolerance; ``busy_timeout`` only bites when
  a second writer (a misconfigured second agent on the same file) holds the lock.
* :class:`AsyncEngineRunner`: PostgreSQL through asyncpg, ``AsyncConnection.run_sync``; the
  statements are awaited network round trips, no threads involved.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
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
    """The runner for a SQLite (sync driver on the loop thread) or PostgreSQL (asyncpg) URL."""
    if url.get_backend_name() == "sqlite":
        return SqliteRunner(url, busy_timeout_ms=busy_timeout_ms)
    return AsyncEngineRunner(url)


class SqliteRunner:
    """One stdlib sqlite3 connection on the loop's thread, one transaction per call."""

    def __init__(self, url: sa.URL, *, busy_timeout_ms: int) -> None:
        self._url = url.set(drivername="sqlite+pysqlite")
        self._busy_timeout_ms = busy_timeout_ms
        self._engine: sa.Engine | None = None
        self._connection: Connection | None = None

    async def start(self) -> None:
        self._connect()

    async def run(self, fn: Callable[[Connection], T], *, write: bool) -> T:  # noqa: ARG002
        # Reads run in a transaction too: one snapshot, released at once; costs no fsync.
        return self._transaction(fn)

    async def run_sqlite3(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn(raw)`` on the stdlib connection itself, in one ``BEGIN IMMEDIATE`` transaction,
        committed if it returns: the hot path of a commit, without SQLAlchemy's per-statement
        work (about a third of a single command's commit here). ``fn`` runs statements that
        SQLAlchemy compiled once (see ``sql.Sqlite3Statement``)."""
        return self._sqlite3_transaction(fn)

    async def stop(self) -> None:
        self._disconnect()

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

    def _sqlite3_transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._connection is None:
            raise RuntimeError("runner not started")
        raw = self._connection.connection.driver_connection
        if not isinstance(raw, sqlite3.Connection):
            raise TypeError(f"expected a sqlite3 connection, got {type(raw).__name__}")
        raw.execute("BEGIN IMMEDIATE")  # the write lock now, waiting up to busy_timeout
        try:
            result = fn(raw)
        except BaseException:
            raw.rollback()
            raise
        raw.commit()
        return result

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
