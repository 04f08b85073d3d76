"""What only the in-memory fake has: a switch to simulate a failing database (D3 500 replies)."""

from __future__ import annotations

import pytest

from gridguard.store import MemoryStrategyStore, StoredReply, StoredStrategy, StoreError

pytestmark = pytest.mark.unit


async def test_fail_next_commit_fails_once_and_changes_nothing() -> None:
    """fail_next_commit fails exactly one commit, storing nothing, then the store works."""
    store = MemoryStrategyStore()
    await store.open()
    store.fail_next_commit = True
    with pytest.raises(StoreError, match="simulated"):
        await store.commit(
            reply=StoredReply("m-1", "create", b"{}"),
            upserts=[StoredStrategy(1, 7, 2, {})],
            next_id=2,
        )
    assert (await store.list_strategies(), await store.next_id()) == ([], 1)
    assert await store.get_reply("m-1") is None
    await store.commit(reply=StoredReply("m-1", "create", b"{}"), next_id=2)
    assert await store.next_id() == 2
