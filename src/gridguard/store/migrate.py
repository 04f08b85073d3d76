"""Run the shipped Alembic migrations programmatically (no alembic CLI or ini at runtime).

Alembic (with Mako and SQLAlchemy's other dialects behind it) is imported only when a database
is not at :data:`HEAD_REVISION` yet: an agent starting on an up-to-date store reads the version
row with one query and never loads it (a third of the start-up's import time).
``tests/store/test_sql.py`` checks that the constant is the newest shipped revision.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
HEAD_REVISION = "0002"
"""The newest revision under ``migrations/versions`` (raise it with every new revision)."""
_VERSION_TABLE = "alembic_version"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config for the shipped scripts, optionally bound to an open connection."""
    from alembic.config import Config  # noqa: PLC0415 - only when migrating

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision shipped with this package (read from the scripts)."""
    from alembic.script import ScriptDirectory  # noqa: PLC0415 - only when migrating

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at (None before the first migration)."""
    from alembic.runtime.migration import MigrationContext  # noqa: PLC0415

    return MigrationContext.configure(connection).get_current_revision()


def stored_revision(connection: Connection) -> str | None:
    """The revision in the version table, read without Alembic (None: no table, or empty)."""
    if not sa.inspect(connection).has_table(_VERSION_TABLE):
        return None
    rows = connection.execute(sa.text(f"SELECT version_num FROM {_VERSION_TABLE}")).all()  # noqa: S608
    return str(rows[0][0]) if len(rows) == 1 else None


def upgrade_to_head(connection: Connection) -> None:
    """Bring the schema up to date on ``connection`` (inside the caller's transaction)."""
    if stored_revision(connection) == HEAD_REVISION:
        return
    from alembic import command  # noqa: PLC0415 - only when migrating

    command.upgrade(alembic_config(connection), "head")
