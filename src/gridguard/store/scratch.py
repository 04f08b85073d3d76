"""Throw-away PostgreSQL databases for tests and benchmarks (never used by the agent).

Each scratch database has a unique name, so runs never touch each other's tables nor the
tables of other programs in the admin database.
"""

from __future__ import annotations

import uuid

import asyncpg
import sqlalchemy as sa

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
"""The PostgreSQL that developers and CI run locally (trust auth)."""


async def create_scratch_database(admin_url: str = DEFAULT_ADMIN_URL, *, prefix: str) -> str:
    """Create an empty database next to ``admin_url``'s; return its plain ``postgresql://`` URL.

    Raises OSError or an asyncpg error when the server cannot be reached.
    """
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(admin_url, timeout=5)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)


async def drop_scratch_database(url: str, *, admin_url: str = DEFAULT_ADMIN_URL) -> None:
    """Drop a database made by :func:`create_scratch_database`, ending its sessions."""
    name = sa.make_url(url).database
    conn = await asyncpg.connect(admin_url, timeout=5)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def reset_database(url: str) -> None:
    """Empty a scratch database: drop and recreate its public schema."""
    conn = await asyncpg.connect(url, timeout=5)
    try:
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        await conn.close()
