"""Alembic migrations of the platform database (scripts, not an importable API).

Rulings: none owned.
"""
