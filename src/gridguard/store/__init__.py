"""Persistence of the edge agent: the :class:`StrategyStore` interface and its stores.

* :class:`gridguard.store.sql.SqlStrategyStore`: SQLite file (default) or PostgreSQL, by URL;
* :class:`gridguard.store.memory.MemoryStrategyStore`: in memory, for tests and demos.

:func:`make_store` picks one from the configured URL. The SQL store is imported only when asked
for, so code that needs just the interface or the fake does not load the database drivers.

Rulings: none owned; the store keeps what D5 (replies) and D7 (ids never reused) require.
"""

from __future__ import annotations

from gridguard.store.base import (
    DEFAULT_KEEP_REPLIES,
    CommitEntry,
    StoredReply,
    StoredStrategy,
    StoreError,
    StrategyStore,
)
from gridguard.store.memory import MemoryDatabase, MemoryStrategyStore

MEMORY_URL = "memory://"
"""The URL of a fresh in-memory store (forgets everything when the process ends)."""

__all__ = [
    "DEFAULT_KEEP_REPLIES",
    "MEMORY_URL",
    "CommitEntry",
    "MemoryDatabase",
    "MemoryStrategyStore",
    "StoreError",
    "StoredReply",
    "StoredStrategy",
    "StrategyStore",
    "make_store",
]


def make_store(url: str, *, keep_replies: int = DEFAULT_KEEP_REPLIES) -> StrategyStore:
    """The store for ``url``: ``memory://``, a SQLite file path or URL, or a PostgreSQL URL.

    Raises ValueError for a URL no store understands; nothing is connected until ``open()``.
    """
    if url.strip() == MEMORY_URL:
        return MemoryStrategyStore(keep_replies=keep_replies)
    from gridguard.store.sql import SqlStrategyStore  # noqa: PLC0415 - drivers load on demand

    return SqlStrategyStore(url, keep_replies=keep_replies)
