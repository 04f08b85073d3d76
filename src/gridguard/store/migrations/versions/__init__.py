"""Alembic revisions, one file each: NNNN_what.py with revision "NNNN".

Rulings: none owned.
"""
