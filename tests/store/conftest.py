"""Store backends for the shared test-suite: memory, SQLite (tmp_path), PostgreSQL.

PostgreSQL runs on 127.0.0.1:5432 (or at GRIDGUARD_TEST_POSTGRES_URL); this session creates
its own scratch database there and drops it at the end. When the server cannot be reached the
PostgreSQL cases skip, except under CI=true, where they fail: CI must not go green without
having run them.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import pytest

from gridguard.store import DEFAULT_KEEP_REPLIES, MemoryDatabase, MemoryStrategyStore
from gridguard.store.base import StrategyStore
from gridguard.store.scratch import (
    DEFAULT_ADMIN_URL,
    create_scratch_database,
    drop_scratch_database,
    reset_database,
)
from gridguard.store.sql import SqlStrategyStore

SQL_BACKENDS = [
    pytest.param("sqlite", id="sqlite", marks=pytest.mark.integration),
    pytest.param(
        "postgresql", id="postgresql", marks=[pytest.mark.postgres, pytest.mark.integration]
    ),
]
ADMIN_URL = os.environ.get("GRIDGUARD_TEST_POSTGRES_URL", DEFAULT_ADMIN_URL)
ALL_BACKENDS = [pytest.param("memory", id="memory", marks=pytest.mark.unit), *SQL_BACKENDS]


@dataclass
class Backend:
    """One place a store keeps its data; every :meth:`open` is a new store on that place."""

    name: str
    url: str
    memory: MemoryDatabase = field(default_factory=MemoryDatabase)
    opened: list[StrategyStore] = field(default_factory=list)

    async def open(self, *, keep_replies: int = DEFAULT_KEEP_REPLIES) -> StrategyStore:
        store: StrategyStore
        if self.name == "memory":
            store = MemoryStrategyStore(self.memory, keep_replies=keep_replies)
        else:
            store = SqlStrategyStore(self.url, keep_replies=keep_replies)
        await store.open()
        self.opened.append(store)
        return store

    async def close_all(self) -> None:
        for store in self.opened:
            await store.close()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A scratch PostgreSQL database for this test session (skip, or fail under CI=true)."""
    try:
        url = asyncio.run(create_scratch_database(ADMIN_URL, prefix="gridguard_test"))
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        reason = f"PostgreSQL at {ADMIN_URL} unreachable: {exc!r}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason} (CI=true: PostgreSQL tests must run)")
        pytest.skip(reason)
    yield url
    asyncio.run(drop_scratch_database(url, admin_url=ADMIN_URL))


def _place(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if name == "memory":
        return Backend(name, "memory://")
    if name == "sqlite":
        return Backend(name, f"sqlite:///{tmp_path / 'gridguard.db'}")
    return Backend(name, request.getfixturevalue("postgres_url"))


async def _emptied(backend: Backend) -> Backend:
    if backend.name == "postgresql":
        await reset_database(backend.url)
    return backend


@pytest.fixture(params=ALL_BACKENDS)
def any_place(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return _place(request.param, request, tmp_path)


@pytest.fixture(params=SQL_BACKENDS)
def sql_place(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return _place(request.param, request, tmp_path)


@pytest.fixture
async def backend(any_place: Backend) -> AsyncIterator[Backend]:
    """Every backend, each test on an empty one."""
    yield await _emptied(any_place)
    await any_place.close_all()


@pytest.fixture
async def sql_backend(sql_place: Backend) -> AsyncIterator[Backend]:
    """The SQL backends only (migrations, drivers), each test on an empty one."""
    yield await _emptied(sql_place)
    await sql_place.close_all()


@pytest.fixture
async def store(backend: Backend) -> StrategyStore:
    """An open, empty store on each backend."""
    return await backend.open()
