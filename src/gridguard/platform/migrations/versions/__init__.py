"""Alembic revisions of the platform, one file each: NNNN_what.py with revision "NNNN".

Rulings: none owned.
"""
