"""Alembic environment for the platform's database (separate from the edge store's).

At runtime :func:`gridguard.platform.database.Database.open` hands over an open connection in
``config.attributes["connection"]``; from the alembic CLI the URL comes from ``-x url=...``.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from gridguard.store.urls import async_url

config = context.config
VERSION_TABLE = "platform_alembic_version"


def _cli_url() -> str:
    return context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url", "sqlite:///gridguard-platform/platform.db"
    )


def _migrate(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=None, version_table=VERSION_TABLE)
    with context.begin_transaction():
        context.run_migrations()


async def _migrate_cli_url() -> None:
    engine = create_async_engine(async_url(_cli_url()))
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_migrate)
    finally:
        await engine.dispose()


def _run() -> None:
    given = config.attributes.get("connection")
    if isinstance(given, Connection):
        _migrate(given)
    else:
        asyncio.run(_migrate_cli_url())


_run()
