"""The platform's database: SQLAlchemy 2 async on SQLite (default) or PostgreSQL, by URL.

SQLite runs in WAL mode with ``synchronous=FULL`` and a ``busy_timeout``, and writes go one at a
time (an :class:`asyncio.Lock`: one writer). PostgreSQL takes concurrent writers. The schema is
brought to the shipped Alembic head on :meth:`Database.open`, on both.

The hot paths (the command round trip, the token check, the telemetry flush) hand a whole
transaction to :meth:`Database.run_write` / :meth:`Database.run_read` as one plain function. On
SQLite that function runs in a worker thread on a synchronous engine, once: aiosqlite hops to its
thread and back for every cursor, execute, fetch and commit (some 28 hops for one command,
each a GIL hand-over that costs 50-100 us of CPU on a busy 2-core box and more in waiting). On
PostgreSQL it runs through the async connection's ``run_sync`` (asyncpg, no thread).

On SQLite the writes queued while one commit is under way go together (group commit): one
thread hop, one transaction, one ``COMMIT`` (one fsync under ``synchronous=FULL``) for all of
them, each in a SAVEPOINT of its own, so each still succeeds or fails alone exactly as in a
transaction of its own; every caller is answered only after that COMMIT. At 100 commands a
second this is what keeps the round trip short: two commits per command one after the other
queued behind each other's fsync.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from gridguard.store.urls import async_url, display_url, sqlite_file

DEFAULT_DB_URL = "sqlite:///gridguard-platform/platform.db"
MIGRATIONS_DIR = Path(__file__).with_name("migrations")
T = TypeVar("T")
GROUP_MAX = 64
"""At most this many queued writes share one SQLite transaction (one COMMIT)."""


class DatabaseError(RuntimeError):
    """The database cannot be opened or migrated."""


def aware(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes: they are UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def utc(moment: datetime) -> datetime:
    """:func:`aware` for a value that is never None."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _upgrade(connection: Connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _sqlite_pragmas(busy_timeout_ms: int) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        for pragma in (
            "journal_mode=WAL",
            "synchronous=FULL",
            f"busy_timeout={busy_timeout_ms}",
            "foreign_keys=ON",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    return on_connect


def _immediate_transactions(engine: Engine) -> None:
    """SQLAlchemy's recipe for SAVEPOINT on pysqlite (the driver's own implicit BEGIN off,
    BEGIN emitted when SQLAlchemy begins, else the first RELEASE would commit), with BEGIN
    IMMEDIATE: the write lock is taken (or waited for, ``busy_timeout``) at the start, so a
    transaction that reads before it writes never finds its snapshot stale at its first write
    (SQLITE_BUSY_SNAPSHOT, "database is locked" at once, whatever the timeout)."""

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    def on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    sa.event.listen(engine, "connect", on_connect)
    sa.event.listen(engine, "begin", on_begin)
    _plain_savepoints(engine.dialect)


def _plain_savepoints(dialect: sa.Dialect) -> None:
    """SAVEPOINT, RELEASE and ROLLBACK TO as plain SQL on this engine's dialect: SQLAlchemy
    compiles a new statement object for each (no statement cache for them), 53 us a
    SAVEPOINT/RELEASE pair against 12 us, and a command's two writes each take one in a group
    commit (the result's answer a second)."""

    def do_savepoint(connection: Connection, name: str) -> None:
        connection.exec_driver_sql(f"SAVEPOINT {name}")

    def do_release_savepoint(connection: Connection, name: str) -> None:
        connection.exec_driver_sql(f"RELEASE SAVEPOINT {name}")

    def do_rollback_to_savepoint(connection: Connection, name: str) -> None:
        connection.exec_driver_sql(f"ROLLBACK TO SAVEPOINT {name}")

    # an instance's own attributes: this engine's dialect only, not the class
    vars(dialect).update(
        do_savepoint=do_savepoint,
        do_release_savepoint=do_release_savepoint,
        do_rollback_to_savepoint=do_rollback_to_savepoint,
    )


@dataclass(slots=True)
class _Queued:
    work: Callable[[Connection], Any]
    future: asyncio.Future[Any]
    outcome: tuple[bool, Any] = (False, None)


class Database:
    """One engine, reads concurrent, writes through :meth:`write` (serialized on SQLite)."""

    def __init__(self, url: str = DEFAULT_DB_URL, *, busy_timeout_ms: int = 5000) -> None:
        self.url = async_url(url)
        self._busy_timeout_ms = busy_timeout_ms
        self._engine: AsyncEngine | None = None
        self._sync: Engine | None = None
        self._sync_writes: Engine | None = None
        self._writer: _Writer | None = None
        self._write_lock: asyncio.Lock | None = None
        self._queue: deque[_Queued] = deque()
        self._drainer: asyncio.Task[None] | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"

    @property
    def display_url(self) -> str:
        return display_url(self.url)

    async def open(self) -> None:
        """Create the engine and migrate to head; DatabaseError says what failed."""
        path = sqlite_file(self.url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(self.url, pool_pre_ping=not self.is_sqlite)
        if self.is_sqlite:
            sa.event.listen(engine.sync_engine, "connect", _sqlite_pragmas(self._busy_timeout_ms))
            self._write_lock = asyncio.Lock()
        try:
            async with engine.begin() as conn:
                await conn.run_sync(_upgrade)
        except (OSError, sa.exc.SQLAlchemyError) as exc:
            await engine.dispose()
            raise DatabaseError(f"cannot open {self.display_url}: {exc}") from exc
        self._engine = engine
        if self.is_sqlite:
            self._sync = sa.create_engine(self.url.set(drivername="sqlite"))
            sa.event.listen(self._sync, "connect", _sqlite_pragmas(self._busy_timeout_ms))
            self._sync_writes = sa.create_engine(self.url.set(drivername="sqlite"))
            sa.event.listen(self._sync_writes, "connect", _sqlite_pragmas(self._busy_timeout_ms))
            _immediate_transactions(self._sync_writes)
            self._writer = _Writer(self._sync_writes)

    async def close(self) -> None:
        if self._drainer is not None:
            with contextlib.suppress(Exception):
                await self._drainer
            self._drainer = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        for sync in (self._sync, self._sync_writes):
            if sync is not None:
                sync.dispose()
        self._sync = self._sync_writes = None
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    def _ready(self) -> AsyncEngine:
        if self._engine is None:
            raise DatabaseError("database not open")
        return self._engine

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self._ready().connect() as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """One transaction, committed on exit; the only writer on SQLite."""
        lock = self._write_lock or contextlib.nullcontext()
        async with lock, self._ready().begin() as conn:
            yield conn

    async def run_write(self, work: Callable[[Connection], T]) -> T:
        """``work(conn)`` in one transaction, committed when it returns (rolled back if it
        raises); on SQLite in a worker thread, as the only writer."""
        engine = self._ready()
        if self._sync is None:
            async with engine.begin() as conn:
                return await conn.run_sync(work)
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append(_Queued(work, future))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain(), name="platform-db-writes")
        return await future

    async def _drain(self) -> None:
        """Run the queued writes, up to :data:`GROUP_MAX` per transaction, until none is left;
        each caller gets its own outcome once the group has committed."""
        assert self._write_lock is not None
        assert self._writer is not None
        while self._queue:
            group = [self._queue.popleft() for _ in range(min(GROUP_MAX, len(self._queue)))]
            try:
                async with self._write_lock:
                    await asyncio.to_thread(self._writer.run, group)
            except Exception as exc:  # noqa: BLE001 - the shared COMMIT failed: none is stored
                for queued in group:
                    if not queued.future.done():
                        queued.future.set_exception(exc)
                continue
            except BaseException:
                for queued in group:
                    queued.future.cancel()
                raise
            for queued in group:
                if queued.future.done():
                    continue  # its caller was cancelled; the write is committed regardless
                ok, value = queued.outcome
                if ok:
                    queued.future.set_result(value)
                else:
                    queued.future.set_exception(cast("BaseException", value))

    async def run_read(self, work: Callable[[Connection], T]) -> T:
        """``work(conn)`` on a connection of its own (no transaction kept)."""
        engine = self._ready()
        if self._sync is None:
            async with engine.connect() as conn:
                return await conn.run_sync(work)
        sync = self._sync
        return await asyncio.to_thread(_on_connection, sync, work)


@dataclass(frozen=True, slots=True)
class JsonText:
    """A JSON document and the strict JSON text it was parsed from: a :class:`StoredJson`
    bind writes the text as it came instead of serializing the document again (re-encoding a
    ~1 kB status/post for its device row was a quarter of a telemetry flush)."""

    value: Any
    text: str


class StoredJson(sa.TypeDecorator[Any]):
    """A JSON bind that takes a :class:`JsonText` as its text and anything else as JSON."""

    impl = sa.JSON
    cache_ok = True

    def bind_processor(self, dialect: sa.Dialect) -> Callable[[Any], Any] | None:
        inner = self.impl_instance.bind_processor(dialect)

        def process(value: Any) -> Any:
            if isinstance(value, JsonText):
                return value.text
            return value if inner is None else inner(value)

        return process


class _Writer:
    """The SQLite write engine's one connection, kept from one group commit to the next (there
    is one writer at a time anyway): taking it from the pool and giving it back, with the
    pool's rollback on return, was a third of a command's two writes. Anything unexpected
    (not a work raising) closes it; the next group opens a new one."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._conn: Connection | None = None

    def run(self, group: list[_Queued]) -> None:
        """:func:`_in_group` on the kept connection (in a worker thread, one at a time)."""
        conn, self._conn = self._conn or self._engine.connect(), None
        try:
            _in_group(conn, group)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _in_group(conn: Connection, group: list[_Queued]) -> None:
    """Each work in a SAVEPOINT of its own (rolled back alone if it raises), one COMMIT for
    all; a lone work needs no SAVEPOINT."""
    if len(group) == 1:
        queued = group[0]
        try:
            with conn.begin():
                value = queued.work(conn)
        except Exception as exc:  # noqa: BLE001 - handed to its caller
            queued.outcome = (False, exc)
        else:
            queued.outcome = (True, value)
        return
    with conn.begin():
        for queued in group:
            savepoint = conn.begin_nested()
            try:
                value = queued.work(conn)
            except Exception as exc:  # noqa: BLE001 - handed to its caller
                savepoint.rollback()
                queued.outcome = (False, exc)
            else:
                savepoint.commit()
                queued.outcome = (True, value)


def _on_connection(engine: Engine, work: Callable[[Connection], T]) -> T:
    with engine.connect() as conn:
        return work(conn)


def execute_many(conn: Connection, statement: Any, rows: list[dict[str, Any]]) -> None:
    """``conn.execute(statement, rows)`` for thousands of rows a second: the statement is
    compiled once and each row goes to the driver as a tuple through the columns' own bind
    processors (what SQLAlchemy would send), skipping its general per-row parameter building,
    which cost ~60% of a telemetry flush. Parameters are built a column at a time, and a value
    repeated from the row before (the flush's one ``now`` in every device row) is processed
    once: SQLite's datetime processor alone was ~10% of a flush. Every row must have the keys
    of the first."""
    if not rows:
        return
    compiled = statement.compile(dialect=conn.dialect, column_keys=list(rows[0]))
    order = compiled.positiontup
    if order is None:  # a named paramstyle: let SQLAlchemy do it
        conn.execute(statement, rows)
        return
    columns = []
    for key in order:
        bind = compiled.binds[key]
        processor = bind.type._cached_bind_processor(conn.dialect)  # noqa: SLF001
        values = [row[bind.key] for row in rows]
        columns.append(values if processor is None else _processed(processor, values))
    params = list(zip(*columns, strict=True))
    conn.exec_driver_sql(compiled.string, params)


def _processed(processor: Callable[[Any], Any], values: list[Any]) -> list[Any]:
    out = []
    last: Any = _NOTHING
    done: Any = None
    for value in values:
        if value is not last:
            last, done = value, processor(value)
        out.append(done)
    return out


_NOTHING = object()
