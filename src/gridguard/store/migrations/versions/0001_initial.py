"""Initial schema: strategies, counters, replies, state.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# BIGINT, but INTEGER on SQLite: only "INTEGER PRIMARY KEY" is the rowid itself (no extra index).
ROWID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision = "0001"
down_revision: str | None = None
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None


def upgrade() -> None:
    op.create_table(
        "strategies",
        sa.Column("id", ROWID, primary_key=True, autoincrement=False),
        sa.Column("ele_meter_id", sa.BigInteger, nullable=False),
        sa.Column("device_type", sa.Integer, nullable=False),
        sa.Column("document", sa.JSON, nullable=False),
        sa.UniqueConstraint("ele_meter_id", "device_type", name="uq_strategies_meter_type"),
    )
    counters = op.create_table(
        "store_counters",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("next_id", sa.BigInteger, nullable=False),
        sa.Column("reply_seq", sa.BigInteger, nullable=False),
        sa.CheckConstraint("id = 1", name="ck_store_counters_single_row"),
    )
    # Ids start at 1 (D7); no reply stored yet.
    op.bulk_insert(counters, [{"id": 1, "next_id": 1, "reply_seq": 0}])
    op.create_table(
        "replies",
        sa.Column("seq", ROWID, primary_key=True, autoincrement=False),
        sa.Column("mid", sa.String, nullable=False),
        sa.Column("op", sa.String(32), nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("CURRENT_TIMESTAMP"),
        ),
        sa.UniqueConstraint("mid", name="uq_replies_mid"),
    )
    op.create_table(
        "state",
        sa.Column("key", sa.String, primary_key=True),
        sa.Column("value", sa.JSON, nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("CURRENT_TIMESTAMP"),
        ),
    )


def downgrade() -> None:
    op.drop_table("state")
    op.drop_table("replies")
    op.drop_table("store_counters")
    op.drop_table("strategies")
