"""The store's tables, as SQLAlchemy Core metadata (what the runtime queries are built on).

Migrations under ``migrations/versions`` create these tables; they never import this module (a
revision is frozen history). ``tests/store/test_migrations.py`` checks that the two agree.

* ``strategies``: key columns plus the JSON document; at most one per (meter, type) (D7).
* ``store_counters``: one row; ``next_id`` (ids never reused, D7) and ``reply_seq``, the gapless
  sequence of stored replies. Every commit updates this row first, so it is also the write lock
  that serializes writers (a PostgreSQL row lock; SQLite takes its write lock on it).
* ``replies``: mid -> reply (D5), numbered by ``reply_seq``; pruning keeps the newest N exactly;
  ``digest`` fingerprints the command's data (a reused mid with other data is refused).
* ``state``: small JSON documents of the control engine (D18).
"""

from __future__ import annotations

import sqlalchemy as sa

COUNTERS_ROW_ID = 1
"""The primary key of the single ``store_counters`` row."""

ROWID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
"""A 64-bit key; on SQLite spelled INTEGER so that it *is* the rowid (no extra index to write)."""

metadata = sa.MetaData()

strategies = sa.Table(
    "strategies",
    metadata,
    sa.Column("id", ROWID, primary_key=True, autoincrement=False),
    sa.Column("ele_meter_id", sa.BigInteger, nullable=False),
    sa.Column("device_type", sa.Integer, nullable=False),
    sa.Column("document", sa.JSON, nullable=False),
    sa.UniqueConstraint("ele_meter_id", "device_type", name="uq_strategies_meter_type"),
)

store_counters = sa.Table(
    "store_counters",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("next_id", sa.BigInteger, nullable=False),
    sa.Column("reply_seq", sa.BigInteger, nullable=False),
    sa.CheckConstraint("id = 1", name="ck_store_counters_single_row"),
)

replies = sa.Table(
    "replies",
    metadata,
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
    sa.Column("digest", sa.String(64), nullable=True),
    sa.UniqueConstraint("mid", name="uq_replies_mid"),
)

state = sa.Table(
    "state",
    metadata,
    sa.Column("key", sa.String, primary_key=True),
    sa.Column("value", sa.JSON, nullable=False),
    sa.Column(
        "updated_at",
        sa.DateTime(timezone=True),
        nullable=False,
        server_default=sa.text("CURRENT_TIMESTAMP"),
    ),
)
