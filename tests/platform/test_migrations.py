"""The migrations and the tables the code uses (``platform/schema.py``) describe one schema:
a database migrated to head has no difference from the metadata."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from gridguard.platform.database import Database
from gridguard.platform.schema import metadata

pytestmark = pytest.mark.integration


def differences(connection: sa.Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": False})
    return [
        d
        for d in compare_metadata(context, metadata)
        if d[0] != "remove_table" or d[1].name != "platform_alembic_version"
    ]


async def test_migrated_database_matches_the_schema(db_url: str) -> None:
    db = Database(db_url)
    await db.open()
    try:
        async with db.read() as conn:
            found = await conn.run_sync(differences)
    finally:
        await db.close()
    assert found == []


def test_a_table_missing_from_the_migrations_is_found(tmp_path: Path) -> None:
    """The check can fail: a table only in the metadata shows as a difference."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    with engine.connect() as conn:
        found = differences(conn)
    engine.dispose()
    assert {d[1].name for d in found if d[0] == "add_table"} >= {"devices", "login_failures"}
