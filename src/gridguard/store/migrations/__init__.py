"""Alembic migrations of the edge store (scripts, not an importable API).

Rulings: none owned.
"""
