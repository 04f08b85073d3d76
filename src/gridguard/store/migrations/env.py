"""Alembic environment for the edge store.

At runtime :func:`gridguard.store.migrate.upgrade_to_head` hands over an open connection in
``config.attributes["connection"]``. From the alembic CLI (developers), the URL comes from
``-x url=...`` or ``sqlalchemy.url``: a SQLite file is migrated through the standard
library's driver (as the store opens it), PostgreSQL through asyncpg.
"""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from alembic import context
from sqlalchemy.engine import Connection

from gridguard.store.urls import async_url

config = context.config


def _cli_url() -> str:
    return context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url", "sqlite:///gridguard.db"
    )


def _migrate(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()


def _migrate_sqlite(url: sa.URL) -> None:
    engine = sa.create_engine(url.set(drivername="sqlite+pysqlite"), poolclass=sa.NullPool)
    try:
        with engine.begin() as conn:
            _migrate(conn)
    finally:
        engine.dispose()


async def _migrate_postgres(url: sa.URL) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine  # noqa: PLC0415 (postgres extra)

    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_migrate)
    finally:
        await engine.dispose()


def _run() -> None:
    if context.is_offline_mode():
        context.configure(url=async_url(_cli_url()), literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    given = config.attributes.get("connection")
    if isinstance(given, Connection):
        _migrate(given)
        return
    url = async_url(_cli_url())
    if url.get_backend_name() == "sqlite":
        _migrate_sqlite(url)
    else:
        asyncio.run(_migrate_postgres(url))


_run()
