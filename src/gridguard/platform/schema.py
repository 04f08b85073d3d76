"""The platform's tables (SQLAlchemy Core). Times are timezone-aware UTC."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()
Time = sa.DateTime(timezone=True)

devices = sa.Table(
    "devices",
    metadata,
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

commands = sa.Table(
    "commands",
    metadata,
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
    sa.Column("last_sent_at", Time),
    sa.Index("ix_commands_pending", "state", "last_sent_at"),  # the sweeper's scan
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(400), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("created_at", Time, nullable=False),
)

tokens = sa.Table(
    "tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("hint", sa.String(16), nullable=False),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("revoked_at", Time),
)

login_failures = sa.Table(
    "login_failures",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key_hash", sa.String(64), nullable=False, index=True),
    sa.Column("at", Time, nullable=False),
)

telemetry_samples = sa.Table(
    "telemetry_samples",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("device_uid", sa.String(200), nullable=False),
    sa.Column("meter_id", sa.Integer, nullable=False),
    sa.Column("at", Time, nullable=False),
    sa.Column("grid_power_kw", sa.Float),
    sa.Column("demand_kw", sa.Float),
    sa.Column("failsafe", sa.Boolean, nullable=False),
    sa.Index("ix_telemetry_samples_device_meter_at", "device_uid", "meter_id", "at"),
)

telemetry_minutes = sa.Table(
    "telemetry_minutes",
    metadata,
    sa.Column("device_uid", sa.String(200), primary_key=True),
    sa.Column("meter_id", sa.Integer, primary_key=True),
    sa.Column("minute", Time, primary_key=True),
    sa.Column("grid_sum_kw", sa.Float, nullable=False),
    sa.Column("grid_count", sa.Integer, nullable=False),
    sa.Column("grid_min_kw", sa.Float, nullable=False),
    sa.Column("grid_max_kw", sa.Float, nullable=False),
)

demand_peaks = sa.Table(
    "demand_peaks",
    metadata,
    sa.Column("device_uid", sa.String(200), primary_key=True),
    sa.Column("meter_id", sa.Integer, primary_key=True),
    sa.Column("month", sa.String(7), primary_key=True),
    sa.Column("peak_kw", sa.Float, nullable=False),
    sa.Column("peak_at", Time, nullable=False),
    sa.Column("limit_kw", sa.Float),
)

audit_events = sa.Table(
    "audit_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", Time, nullable=False, index=True),
    sa.Column("user_name", sa.String(200), nullable=False),
    sa.Column("token_id", sa.Integer),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("target", sa.String(400), nullable=False),
    sa.Column("detail", sa.JSON),
)

alarm_rules = sa.Table(
    "alarm_rules",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("device_uid", sa.String(200)),
    sa.Column("duration_s", sa.Float, nullable=False, server_default="0"),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("webhook_url", sa.String(1000)),
    sa.Column("created_at", Time, nullable=False),
)

alarms = sa.Table(
    "alarms",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("rule_id", sa.Integer, sa.ForeignKey("alarm_rules.id", ondelete="CASCADE")),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("device_uid", sa.String(200), nullable=False, index=True),
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("started_at", Time, nullable=False),
    sa.Column("ended_at", Time),
    sa.Column("acknowledged_at", Time),
    sa.Column("acknowledged_by", sa.String(100)),
)
