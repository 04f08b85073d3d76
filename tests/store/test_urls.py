"""Store URLs from the config mapped to async drivers, and make_store picking the store."""

from __future__ import annotations

import importlib.util

import pytest

from gridguard.store import MemoryStrategyStore, StoreError, make_store
from gridguard.store.runners import make_runner
from gridguard.store.sql import SqlStrategyStore
from gridguard.store.urls import async_url

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:///var/edge.db", "sqlite+aiosqlite:///var/edge.db"),
        ("sqlite:////abs/edge.db", "sqlite+aiosqlite:////abs/edge.db"),
        ("edge.db", "sqlite+aiosqlite:///edge.db"),
        ("/var/lib/gridguard/edge.db", "sqlite+aiosqlite:////var/lib/gridguard/edge.db"),
        (
            "postgresql://postgres@127.0.0.1:5432/test",
            "postgresql+asyncpg://postgres@127.0.0.1:5432/test",
        ),
        ("postgres://u:pw@db.example:5433/ems", "postgresql+asyncpg://u:***@db.example:5433/ems"),
        ("postgresql+asyncpg://root@127.0.0.1/test", "postgresql+asyncpg://root@127.0.0.1/test"),
    ],
    ids=["sqlite-rel", "sqlite-abs", "bare-rel", "bare-abs", "pg", "pg-short-scheme", "pg-async"],
)
def test_async_url(given: str, expected: str) -> None:
    """Users write plain URLs or paths; the store adds the async driver (passwords hidden)."""
    assert async_url(given).render_as_string(hide_password=True) == expected


@pytest.mark.parametrize(
    "given",
    ["", "mysql://root@127.0.0.1/ems", "postgresql+psycopg2://x@127.0.0.1/db", "sqlite://",
     "sqlite:///:memory:"],
    ids=["empty", "mysql", "sync-driver", "sqlite-memory-short", "sqlite-memory"],
)  # fmt: skip
def test_async_url_refuses(given: str) -> None:
    """Unsupported schemes and in-memory SQLite (each pooled connection would differ) fail."""
    with pytest.raises(ValueError, match=r"store URL|in-memory"):
        async_url(given)


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("memory://", MemoryStrategyStore),
        ("var/edge.db", SqlStrategyStore),
        ("postgresql://postgres@127.0.0.1:5432/test", SqlStrategyStore),
    ],
    ids=["memory", "sqlite", "postgresql"],
)
def test_make_store(url: str, kind: type) -> None:
    """make_store builds the store the URL names, without connecting."""
    assert isinstance(make_store(url), kind)


def test_postgres_without_its_drivers_says_which_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """The core install has no asyncpg: opening a PostgreSQL store names the extra to add."""
    real = importlib.util.find_spec
    monkeypatch.setattr(
        "gridguard.store.runners.find_spec", lambda name: None if name == "asyncpg" else real(name)
    )
    with pytest.raises(
        StoreError, match=r"needs asyncpg, not installed: pip install 'gridguard\[postgres\]'"
    ):
        make_runner(async_url("postgresql://u@127.0.0.1/db"), busy_timeout_ms=0)
