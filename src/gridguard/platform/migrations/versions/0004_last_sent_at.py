"""Commands: when the last attempt went out (the sweeper finds orphans by it).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None


def upgrade() -> None:
    with op.batch_alter_table("commands") as batch:
        batch.add_column(sa.Column("last_sent_at", sa.DateTime(timezone=True)))
    op.execute("UPDATE commands SET last_sent_at = sent_at")
    op.create_index("ix_commands_pending", "commands", ["state", "last_sent_at"])


def downgrade() -> None:
    op.drop_index("ix_commands_pending", "commands")
    with op.batch_alter_table("commands") as batch:
        batch.drop_column("last_sent_at")
