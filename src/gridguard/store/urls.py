"""Store URLs: what users write in the config, mapped to SQLAlchemy's async drivers.

Accepted (the host of a PostgreSQL URL may be remote: users' databases are theirs to place)::

    sqlite:///relative/path.db     -> sqlite+aiosqlite:///relative/path.db
    sqlite:////abs/path.db         -> sqlite+aiosqlite:////abs/path.db
    var/gridguard.db (bare path)   -> sqlite+aiosqlite:///var/gridguard.db
    postgresql://user@host:5432/db -> postgresql+asyncpg://user@host:5432/db  (also postgres://)

An in-memory SQLite database is refused: every pooled connection would see its own empty
database. Use :class:`~gridguard.store.memory.MemoryStrategyStore` (``memory://``) instead.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.exc import ArgumentError

_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}


def async_url(url: str) -> sa.URL:
    """The async SQLAlchemy URL for a store URL or bare SQLite file path (ValueError if neither)."""
    if "://" not in url:
        if not url.strip():
            raise ValueError("store URL is empty")
        return sa.URL.create("sqlite+aiosqlite", database=url)
    try:
        parsed = sa.make_url(url)
    except ArgumentError as exc:
        raise ValueError(f"cannot read store URL {url!r}: {exc}") from exc
    driver = _DRIVERS.get(parsed.drivername)
    if driver is None:
        raise ValueError(
            f"unsupported store URL scheme {parsed.drivername!r}: use sqlite:///path.db, "
            "a file path, or postgresql://user@host:port/db"
        )
    parsed = parsed.set(drivername=driver)
    if driver.startswith("sqlite") and parsed.database in {None, "", ":memory:"}:
        raise ValueError("an in-memory SQLite store forgets everything: give a file path")
    return parsed


def sqlite_file(url: sa.URL) -> Path | None:
    """The database file of a SQLite URL (None for other backends)."""
    if url.get_backend_name() != "sqlite" or url.database is None:
        return None
    return Path(url.database)


def display_url(url: sa.URL) -> str:
    """The URL for messages and logs, password hidden."""
    return url.render_as_string(hide_password=True)
