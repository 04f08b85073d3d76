"""Initial platform schema: devices, commands (the audit), users, tokens.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None

Time = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "devices",
        sa.Column("uid", sa.String(200), primary_key=True),
        sa.Column("scheme", sa.String(16), nullable=False),
        sa.Column("product_key", sa.String(200), nullable=False, server_default=""),
        sa.Column("tenant", sa.String(200), nullable=False, server_default=""),
        sa.Column("prefix", sa.String(400), nullable=False, server_default=""),
        sa.Column("display_name", sa.String(200), nullable=False, server_default=""),
        sa.Column("site_name", sa.String(200), nullable=False, server_default=""),
        sa.Column("time_zone", sa.String(64), nullable=False, server_default="Asia/Shanghai"),
        sa.Column("report_interval_s", sa.Float, nullable=False, server_default="300"),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("last_seen_at", Time),
        sa.Column("last_list", sa.JSON),
        sa.Column("last_list_at", Time),
        sa.Column("last_status", sa.JSON),
        sa.Column("last_status_at", Time),
        sa.Column("desired", sa.JSON),
        sa.Column("desired_at", Time),
        sa.Column("desired_by", sa.String(200)),
    )
    op.create_table(
        "commands",
        sa.Column("mid", sa.String(64), primary_key=True),
        sa.Column("device_uid", sa.String(200), nullable=False, index=True),
        sa.Column("op", sa.String(16), nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False, server_default="operator"),
        sa.Column("request", sa.JSON),
        sa.Column("user_name", sa.String(200), nullable=False, index=True),
        sa.Column("token_id", sa.Integer),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("code", sa.Integer),
        sa.Column("msg", sa.Text),
        sa.Column("data", sa.JSON),
        sa.Column("sent_at", Time, nullable=False, index=True),
        sa.Column("answered_at", Time),
        sa.Column("latency_ms", sa.Float),
        sa.Column("retries", sa.Integer, nullable=False, server_default="0"),
        sa.Column("late", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(400), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", Time, nullable=False),
    )
    op.create_table(
        "tokens",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "user_id",
            sa.Integer,
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("hint", sa.String(16), nullable=False),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("revoked_at", Time),
    )


def downgrade() -> None:
    for table in ("tokens", "users", "commands", "devices"):
        op.drop_table(table)
