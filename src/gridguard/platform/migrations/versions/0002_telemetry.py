"""Telemetry: raw samples, 1-minute rollups, monthly demand peaks.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None

Time = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "telemetry_samples",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("device_uid", sa.String(200), nullable=False),
        sa.Column("meter_id", sa.Integer, nullable=False),
        sa.Column("at", Time, nullable=False),
        sa.Column("grid_power_kw", sa.Float),
        sa.Column("demand_kw", sa.Float),
        sa.Column("failsafe", sa.Boolean, nullable=False),
    )
    op.create_index(
        "ix_telemetry_samples_device_meter_at",
        "telemetry_samples",
        ["device_uid", "meter_id", "at"],
    )
    op.create_table(
        "telemetry_minutes",
        sa.Column("device_uid", sa.String(200), primary_key=True),
        sa.Column("meter_id", sa.Integer, primary_key=True),
        sa.Column("minute", Time, primary_key=True),
        sa.Column("grid_sum_kw", sa.Float, nullable=False),
        sa.Column("grid_count", sa.Integer, nullable=False),
        sa.Column("grid_min_kw", sa.Float, nullable=False),
        sa.Column("grid_max_kw", sa.Float, nullable=False),
    )
    op.create_table(
        "demand_peaks",
        sa.Column("device_uid", sa.String(200), primary_key=True),
        sa.Column("meter_id", sa.Integer, primary_key=True),
        sa.Column("month", sa.String(7), primary_key=True),
        sa.Column("peak_kw", sa.Float, nullable=False),
        sa.Column("peak_at", Time, nullable=False),
        sa.Column("limit_kw", sa.Float),
    )


def downgrade() -> None:
    for table in ("demand_peaks", "telemetry_minutes", "telemetry_samples"):
        op.drop_table(table)
