"""The SQL implementation of :class:`~gridguard.store.base.StrategyStore`.

SQLAlchemy 2 Core on SQLite (default; a durable file) or PostgreSQL (asyncpg). Every operation
is a plain function over a sync ``Connection`` that a :mod:`runner <.runners>` executes in one
transaction: on the loop's thread for SQLite, or through ``AsyncConnection.run_sync``
on PostgreSQL.
SQLite runs in WAL mode with ``synchronous=FULL`` (a commit is on disk before it returns),
``busy_timeout`` and foreign keys on. One writer: commits and state saves are serialized by an
:class:`asyncio.Lock` (and, across processes, by the counters row every write updates first).

A commit, of one command or of a batch (group commit: one transaction, one fsync), is five
statements at most whatever its size, all built once at import and cached by SQLAlchemy::

    UPDATE store_counters  SET reply_seq = reply_seq + n, next_id = max(next_id, floor)
                           RETURNING reply_seq
    DELETE FROM strategies WHERE id = ?  (every upserted or deleted id)   -- if any
    INSERT INTO strategies (...)         (the net upserts, see .plan)     -- if any
    INSERT INTO replies (seq, mid, op, payload)     (n rows, gapless seq)
    DELETE FROM replies    WHERE seq <= reply_seq - keep_replies          -- once full

Upserts delete then insert, so a batch may swap keys between strategies (D9, D11) and only the
final state has to satisfy the unique (meter, type) constraint (D7). Driver errors leave through
:class:`~gridguard.store.base.StoreError` only.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from types import TracebackType
from typing import Any, Self, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.sql.compiler import SQLCompiler

from gridguard.store.base import (
    DEFAULT_KEEP_REPLIES,
    CommitEntry,
    StoredReply,
    StoredStrategy,
    StoreError,
)
from gridguard.store.migrate import upgrade_to_head
from gridguard.store.plan import NetEffect, net_effect
from gridguard.store.runners import Runner, SqliteRunner, make_runner
from gridguard.store.schema import COUNTERS_ROW_ID, replies, state, store_counters, strategies
from gridguard.store.urls import async_url, display_url

DEFAULT_BUSY_TIMEOUT_MS = 5000
"""How long SQLite waits for another writer's lock before the commit fails (a 500)."""

T = TypeVar("T")


class DocumentNotJsonError(ValueError):
    """A strategy document that JSON cannot hold (a bug upstream): the commit is refused."""


_BASE_ERRORS: tuple[type[Exception], ...] = (
    DocumentNotJsonError,
    SQLAlchemyError,
    OSError,  # connection refused, unreachable host, timeouts, unwritable folder
    sqlite3.Error,
)


def _driver_errors() -> tuple[type[Exception], ...]:
    """The errors a driver raises, with asyncpg's and Alembic's once they are loaded: neither
    is imported for a SQLite store at head (start-up cost), and one not loaded raises none."""
    errors = _BASE_ERRORS
    asyncpg = sys.modules.get("asyncpg")
    if asyncpg is not None:
        errors = (*errors, asyncpg.PostgresError, asyncpg.InterfaceError)
    alembic_util = sys.modules.get("alembic.util")
    if alembic_util is not None:
        errors = (*errors, alembic_util.CommandError)
    return errors

_ID_FLOOR = sa.bindparam("id_floor", type_=sa.BigInteger)
_BUMP_COUNTERS = (
    sa.update(store_counters)
    .where(store_counters.c.id == COUNTERS_ROW_ID)
    .values(
        reply_seq=store_counters.c.reply_seq + sa.bindparam("reply_count", type_=sa.BigInteger),
        next_id=sa.case(
            (store_counters.c.next_id < _ID_FLOOR, _ID_FLOOR), else_=store_counters.c.next_id
        ),
    )
    .returning(store_counters.c.reply_seq)
)
_DELETE_STRATEGY = sa.delete(strategies).where(strategies.c.id == sa.bindparam("strategy_id"))
_INSERT_STRATEGY = sa.insert(strategies)
_INSERT_REPLY = sa.insert(replies)
_PRUNE_REPLIES = sa.delete(replies).where(replies.c.seq <= sa.bindparam("cutoff"))
_SELECT_STRATEGIES = sa.select(
    strategies.c.id, strategies.c.ele_meter_id, strategies.c.device_type, strategies.c.document
).order_by(strategies.c.id)
_SELECT_NEXT_ID = sa.select(store_counters.c.next_id).where(store_counters.c.id == COUNTERS_ROW_ID)
_REPLY_COLUMNS = (replies.c.mid, replies.c.op, replies.c.payload, replies.c.digest)
_SELECT_REPLY = sa.select(*_REPLY_COLUMNS).where(replies.c.mid == sa.bindparam("reply_mid"))
_SELECT_REPLIES = sa.select(*_REPLY_COLUMNS).where(
    replies.c.mid.in_(sa.bindparam("reply_mids", expanding=True))
)
_SELECT_STATE = sa.select(state.c.value).where(state.c.key == sa.bindparam("state_key"))
_UPDATE_STATE = (
    sa.update(state)
    .where(state.c.key == sa.bindparam("state_key"))
    .values(value=sa.bindparam("state_value", type_=sa.JSON), updated_at=sa.func.now())
)
_INSERT_STATE = sa.insert(state)


@dataclass(frozen=True, slots=True)
class Sqlite3Statement:
    """A Core statement compiled once for SQLite, run on the stdlib connection directly.

    The SQL text and parameter order come from SQLAlchemy (one definition of every query); only
    the execution skips its per-call machinery. Values need no type processing except JSON,
    which the caller serializes as SQLAlchemy's JSON type does (``json.dumps``).
    """

    sql: str
    names: tuple[str, ...]
    constants: Mapping[str, Any]

    @classmethod
    def compile(
        cls, statement: sa.ClauseElement, column_keys: Sequence[str] | None = None
    ) -> Sqlite3Statement:
        compiled = statement.compile(
            dialect=sqlite_dialect.dialect(paramstyle="qmark"),
            column_keys=list(column_keys) if column_keys is not None else None,
        )
        if not isinstance(compiled, SQLCompiler):
            raise TypeError(f"not a SQL statement: {statement!r}")
        names = tuple(compiled.positiontup or ())
        constants = {name: bind.value for name, bind in compiled.binds.items() if not bind.required}
        return cls(str(compiled), names, constants)

    def args(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        """Positional parameters from ``values`` (KeyError naming a missing one)."""
        return tuple(
            values[name] if name in values else self.constants[name] for name in self.names
        )


_SQLITE3: dict[sa.Executable, Sqlite3Statement] = {
    statement: Sqlite3Statement.compile(statement, column_keys)
    for statement, column_keys in [
        (_BUMP_COUNTERS, None),
        (_DELETE_STRATEGY, None),
        (_INSERT_STRATEGY, ["id", "ele_meter_id", "device_type", "document"]),
        (_INSERT_REPLY, ["seq", "mid", "op", "payload", "digest"]),
        (_PRUNE_REPLIES, None),
    ]
}
"""The commit's statements, compiled for the stdlib driver (the SQLite hot path)."""


class SqlStrategyStore:
    """The strategy store on SQLite (file) or PostgreSQL, by URL (see :mod:`.urls`)."""

    def __init__(
        self,
        url: str,
        *,
        keep_replies: int = DEFAULT_KEEP_REPLIES,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
    ) -> None:
        if keep_replies < 1:
            raise ValueError(f"keep_replies must be >= 1, got {keep_replies}")
        if busy_timeout_ms < 0:
            raise ValueError(f"busy_timeout_ms must be >= 0, got {busy_timeout_ms}")
        self._url = async_url(url)
        self._keep_replies = keep_replies
        self._busy_timeout_ms = busy_timeout_ms
        self._runner: Runner | None = None
        self._write_lock = asyncio.Lock()

    @property
    def url(self) -> sa.URL:
        """The async SQLAlchemy URL of the database."""
        return self._url

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def open(self) -> None:
        if self._runner is not None:
            return
        runner = make_runner(self._url, busy_timeout_ms=self._busy_timeout_ms)
        with self._errors("open"):
            try:
                await runner.start()
                await runner.run(upgrade_to_head, write=True)
            except BaseException:
                await runner.stop()
                raise
        self._runner = runner

    async def close(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            with self._errors("close"):
                await runner.stop()

    async def list_strategies(self) -> list[StoredStrategy]:
        return await self._run("list strategies", _read_strategies)

    async def next_id(self) -> int:
        return await self._run("read next id", _read_next_id)

    async def get_reply(self, key: str) -> StoredReply | None:
        return await self._run("read reply", partial(_read_reply, key))

    async def reply_keys(self) -> list[str]:
        return await self._run("read reply keys", _read_reply_keys)

    async def get_replies(self, keys: Sequence[str]) -> dict[str, StoredReply]:
        if not keys:
            return {}
        return await self._run("read replies", partial(_read_replies, sorted(set(keys))))

    async def commit(
        self,
        *,
        reply: StoredReply,
        upserts: Sequence[StoredStrategy] = (),
        deletes: Sequence[int] = (),
        next_id: int | None = None,
    ) -> None:
        await self.commit_batch([CommitEntry(reply, upserts, deletes, next_id)])

    async def commit_batch(self, entries: Sequence[CommitEntry]) -> None:
        if not entries:
            return
        effect = net_effect(entries)
        async with self._write_lock:
            runner = self._runner
            keep = self._keep_replies
            if isinstance(runner, SqliteRunner):  # the hot path: see Sqlite3Statement
                with self._errors("commit"):
                    await runner.run_sqlite3(partial(_apply_commit_sqlite3, effect, keep))
                return
            await self._run("commit", partial(_apply_commit, effect, keep), write=True)

    async def load_state(self, key: str) -> dict[str, Any] | None:
        return await self._run("load state", partial(_read_state, key))

    async def save_state(self, key: str, value: dict[str, Any]) -> None:
        await self.save_states({key: value})

    async def save_states(self, states: Mapping[str, dict[str, Any]]) -> None:
        if not states:
            return
        async with self._write_lock:
            await self._run("save state", partial(_write_states, dict(states)), write=True)

    async def _run(self, action: str, fn: Callable[[Connection], T], *, write: bool = False) -> T:
        if self._runner is None:
            raise StoreError(f"store {display_url(self._url)} is not open")
        with self._errors(action):
            return await self._runner.run(fn, write=write)

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Map driver errors to StoreError at the boundary, with a readable reason."""
        try:
            yield
        except Exception as exc:
            if not isinstance(exc, _driver_errors()):
                raise
            where = display_url(self._url)
            raise StoreError(f"store: cannot {action} ({where}): {error_reason(exc)}") from exc


def _bump_params(effect: NetEffect) -> dict[str, Any]:
    return {"id_floor": effect.id_floor, "reply_count": len(effect.replies)}


def _commit_writes(
    effect: NetEffect, keep_replies: int, last_seq: int
) -> list[tuple[sa.Executable, list[dict[str, Any]]]]:
    """What a commit writes after bumping the counters (to ``last_seq``): each statement with
    its rows, in order. Both drivers run exactly these."""
    writes: list[tuple[sa.Executable, list[dict[str, Any]]]] = []
    if effect.replaced:
        writes.append((_DELETE_STRATEGY, [{"strategy_id": i} for i in effect.replaced]))
    if effect.rows:
        writes.append((_INSERT_STRATEGY, [_strategy_row(s) for s in effect.rows]))
    first_seq = last_seq - len(effect.replies) + 1
    writes.append(
        (
            _INSERT_REPLY,
            [
                {"seq": seq, "mid": r.key, "op": r.op, "payload": r.payload, "digest": r.digest}
                for seq, r in enumerate(effect.replies, start=first_seq)
            ],
        )
    )
    if last_seq > keep_replies:
        writes.append((_PRUNE_REPLIES, [{"cutoff": last_seq - keep_replies}]))
    return writes


def _apply_commit(effect: NetEffect, keep_replies: int, conn: Connection) -> None:
    last_seq: int = conn.execute(_BUMP_COUNTERS, _bump_params(effect)).scalar_one()
    for statement, rows in _commit_writes(effect, keep_replies, last_seq):
        conn.execute(statement, rows)


def _apply_commit_sqlite3(effect: NetEffect, keep_replies: int, raw: sqlite3.Connection) -> None:
    """:func:`_apply_commit` on the stdlib SQLite connection, through :data:`_SQLITE3`."""
    bump = _SQLITE3[_BUMP_COUNTERS]
    (last_seq,) = raw.execute(bump.sql, bump.args(_bump_params(effect))).fetchone()
    for statement, rows in _commit_writes(effect, keep_replies, last_seq):
        compiled = _SQLITE3[statement]
        raw.executemany(compiled.sql, [compiled.args(_sqlite3_row(row)) for row in rows])


def _sqlite3_row(row: dict[str, Any]) -> dict[str, Any]:
    """A row with its JSON document serialized, as SQLAlchemy's JSON type would on SQLite."""
    if "document" not in row:
        return row
    return {**row, "document": _json_text(row["id"], row["document"])}


def _json_text(strategy_id: int, document: dict[str, Any]) -> str:
    """``document`` as SQLAlchemy's JSON type stores it on SQLite (``json.dumps``)."""
    try:
        return json.dumps(document)
    except (TypeError, ValueError) as exc:
        raise DocumentNotJsonError(f"strategy {strategy_id}: document is not JSON: {exc}") from exc


def _strategy_row(strategy: StoredStrategy) -> dict[str, Any]:
    return {
        "id": strategy.id,
        "ele_meter_id": strategy.ele_meter_id,
        "device_type": strategy.device_type,
        "document": strategy.document,
    }


def _read_strategies(conn: Connection) -> list[StoredStrategy]:
    return [
        StoredStrategy(
            id=row.id,
            ele_meter_id=row.ele_meter_id,
            device_type=row.device_type,
            document=row.document,
        )
        for row in conn.execute(_SELECT_STRATEGIES)
    ]


def _read_replies(mids: list[str], conn: Connection) -> dict[str, StoredReply]:
    return {row.mid: _reply(row) for row in conn.execute(_SELECT_REPLIES, {"reply_mids": mids})}


def _read_reply_keys(conn: Connection) -> list[str]:
    return list(conn.execute(sa.select(replies.c.mid)).scalars())


def _read_next_id(conn: Connection) -> int:
    value: int = conn.execute(_SELECT_NEXT_ID).scalar_one()
    return value


def _read_reply(mid: str, conn: Connection) -> StoredReply | None:
    row = conn.execute(_SELECT_REPLY, {"reply_mid": mid}).first()
    if row is None:
        return None
    return _reply(row)


def _reply(row: sa.Row[Any, Any, Any, Any]) -> StoredReply:
    return StoredReply(key=row.mid, op=row.op, payload=bytes(row.payload), digest=row.digest)


def _read_state(key: str, conn: Connection) -> dict[str, Any] | None:
    value: dict[str, Any] | None = conn.execute(
        _SELECT_STATE, {"state_key": key}
    ).scalar_one_or_none()
    return value


def _write_states(states: dict[str, dict[str, Any]], conn: Connection) -> None:
    for key, value in states.items():
        updated = conn.execute(_UPDATE_STATE, {"state_key": key, "state_value": value})
        if updated.rowcount == 0:
            conn.execute(_INSERT_STATE, {"key": key, "value": value})


def error_reason(exc: BaseException) -> str:
    """The driver's own words, first line, without SQLAlchemy's wrapping and class prefixes."""
    inner: BaseException = exc
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        inner = exc.orig
    text = str(inner).strip() or type(inner).__name__
    if text.startswith("<class "):  # asyncpg via SQLAlchemy's adapter: "<class '...'>: msg"
        text = text.partition(": ")[2] or text
    return text.splitlines()[0]
