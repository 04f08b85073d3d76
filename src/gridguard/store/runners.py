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
  a second writer (a misconfigured second agent on the same file) holds the lock. Copying the
  WAL back into the database file (the checkpoint) is kept out of the commits: a
  :class:`Checkpointer` thread does it once commits pause.
* :class:`AsyncEngineRunner`: PostgreSQL through asyncpg, ``AsyncConnection.run_sync``; the
  statements are awaited network round trips, no threads involved.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from functools import partial
from importlib.util import find_spec
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gridguard.store.base import StoreError
from gridguard.store.urls import sqlite_file

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

POSTGRES_DRIVERS = ("asyncpg", "greenlet")
"""What a PostgreSQL store needs beyond the core install (the ``postgres`` extra)."""

T = TypeVar("T")

log = logging.getLogger("gridguard.store")

WRITER_AUTOCHECKPOINT_PAGES = 10_000
"""SQLite checkpoints (copies the WAL back into the database file, then fsyncs it) inside the
commit that takes the WAL past this many pages. Its default, 1,000, made one command in ~180
wait 0.8-3 ms for it on a 2-core VM (a commit alone: 0.2 ms), right at the p99 round trip;
at 10,000 pages (40 MiB of WAL at most) one in ~1,800 does (2-6 ms, as its pages repeat), and
the checkpointer below usually gets there first."""
CHECKPOINT_IDLE_S = 1.0
"""The checkpointer copies the WAL once commits have paused this long."""


class Checkpointer:
    """Checkpoints the WAL on its own thread and connection once commits pause.

    In the field, commands come rarely: the copy then happens between them, not inside one, and
    the WAL stays small. Under steady load the writer's own checkpoint is the backstop. A
    PASSIVE checkpoint never blocks the writer (wal.html, "Application-Initiated
    Checkpoints"), and the stdlib driver releases the GIL while SQLite works. Checkpointing
    beside a busy writer was tried and measured worse: the two fsyncs contend for the disk.
    """

    def __init__(self, file: str, *, idle_s: float = CHECKPOINT_IDLE_S) -> None:
        self._file = file
        self._idle_s = idle_s
        self._commits = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def committed(self) -> None:
        """Count one commit (called on the writer's thread; a plain int is enough)."""
        self._commits += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        db = sqlite3.connect(self._file, isolation_level=None, check_same_thread=False)
        try:
            flushed = seen = self._commits
            while not self._stop.wait(self._idle_s):
                commits = self._commits
                if commits == seen and commits != flushed:  # a whole pause without commits
                    flushed = commits
                    try:
                        db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    except sqlite3.Error as exc:  # the writer's own checkpoint still bounds it
                        log.warning("idle checkpoint of %s failed: %s", self._file, exc)
                seen = commits
        finally:
            db.close()


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
    missing = [name for name in POSTGRES_DRIVERS if find_spec(name) is None]
    if missing:
        raise StoreError(
            f"a PostgreSQL store needs {' and '.join(missing)}, not installed: "
            "pip install 'gridguard[postgres]'"
        )
    return AsyncEngineRunner(url)


class SqliteRunner:
    """One stdlib sqlite3 connection on the loop's thread, one transaction per call."""

    def __init__(
        self, url: sa.URL, *, busy_timeout_ms: int, checkpoint_idle_s: float = CHECKPOINT_IDLE_S
    ) -> None:
        self._url = url.set(drivername="sqlite+pysqlite")
        self._busy_timeout_ms = busy_timeout_ms
        self._file = sqlite_file(self._url)
        self._checkpoint_idle_s = checkpoint_idle_s
        self._engine: sa.Engine | None = None
        self._connection: Connection | None = None
        self._checkpointer: Checkpointer | None = None

    async def start(self) -> None:
        self._connect()
        if self._file is not None:
            self._checkpointer = Checkpointer(str(self._file), idle_s=self._checkpoint_idle_s)
            self._checkpointer.start()

    async def run(self, fn: Callable[[Connection], T], *, write: bool) -> T:
        # Reads run in a transaction too: one snapshot, released at once; costs no fsync.
        return self._transaction(fn, write=write)

    async def run_sqlite3(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn(raw)`` on the stdlib connection itself, in one ``BEGIN IMMEDIATE`` transaction,
        committed if it returns: the hot path of a commit, without SQLAlchemy's per-statement
        work (about a third of a single command's commit here). ``fn`` runs statements that
        SQLAlchemy compiled once (see ``sql.Sqlite3Statement``)."""
        return self._sqlite3_transaction(fn)

    async def stop(self) -> None:
        checkpointer, self._checkpointer = self._checkpointer, None
        if checkpointer is not None:
            checkpointer.stop()
        self._disconnect()

    def _connect(self) -> None:
        if self._file is not None:
            self._file.parent.mkdir(parents=True, exist_ok=True)
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

    def _transaction(self, fn: Callable[[Connection], T], *, write: bool) -> T:
        if self._connection is None:
            raise RuntimeError("runner not started")
        with self._connection.begin():
            result = fn(self._connection)
        if write and self._checkpointer is not None:
            self._checkpointer.committed()
        return result

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
        if self._checkpointer is not None:
            self._checkpointer.committed()
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
        from sqlalchemy.ext.asyncio import create_async_engine  # noqa: PLC0415 (postgres extra)

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
        cursor.execute(f"PRAGMA wal_autocheckpoint={WRITER_AUTOCHECKPOINT_PAGES}")
    finally:
        cursor.close()
