"""Group commit (commit_batch) and batch reply lookup (get_replies), on every backend."""

from __future__ import annotations

import pytest

from gridguard.store import StoreError, StrategyStore
from gridguard.store.base import CommitEntry
from tests.store.conftest import Backend
from tests.store.test_contract import reply, snapshot, strategy


async def test_batch_applies_entries_in_order(store: StrategyStore) -> None:
    """Later entries see earlier ones: create, update the created, delete another."""
    await store.commit(reply=reply("m-0"), upserts=[strategy(1, meter=1)], next_id=2)
    await store.commit_batch(
        [
            CommitEntry(reply("m-1"), upserts=[strategy(2, meter=2)], next_id=3),
            CommitEntry(reply("m-2", "update"), upserts=[strategy(2, meter=2, streaming_status=2)]),
            CommitEntry(reply("m-3", "delete"), deletes=[1]),
            CommitEntry(reply("m-4"), upserts=[strategy(3, meter=1)], next_id=4),
        ]
    )
    assert await store.list_strategies() == [
        strategy(2, meter=2, streaming_status=2),
        strategy(3, meter=1),
    ]
    assert await store.next_id() == 4
    assert await store.get_replies(["m-1", "m-2", "m-3", "m-4"]) == {
        "m-1": reply("m-1"),
        "m-2": reply("m-2", "update"),
        "m-3": reply("m-3", "delete"),
        "m-4": reply("m-4"),
    }


async def test_batch_create_then_delete(store: StrategyStore) -> None:
    """A strategy created and deleted in the same batch leaves no row, but its id is spent."""
    await store.commit_batch(
        [
            CommitEntry(reply("m-1"), upserts=[strategy(1)], next_id=2),
            CommitEntry(reply("m-2", "delete"), deletes=[1]),
        ]
    )
    assert await store.list_strategies() == []
    assert await store.next_id() == 2


@pytest.mark.parametrize(
    "entries",
    [
        [
            CommitEntry(reply("m-1"), upserts=[strategy(2, meter=2)], next_id=3),
            CommitEntry(reply("m-2"), upserts=[strategy(3)], next_id=4),
        ],
        [
            CommitEntry(reply("m-1"), upserts=[strategy(2, meter=2)], next_id=3),
            CommitEntry(reply("m-1"), upserts=[strategy(3, meter=3)], next_id=4),
        ],
        [
            CommitEntry(reply("m-1"), upserts=[strategy(2, meter=2)], next_id=3),
            CommitEntry(reply("m-0"), upserts=[strategy(3, meter=3)], next_id=4),
        ],
    ],
    ids=["second-entry-breaks-d7", "mid-twice-in-batch", "mid-stored-before"],
)
async def test_failed_batch_stores_nothing(
    store: StrategyStore, entries: list[CommitEntry]
) -> None:
    """All or nothing: one bad entry and no entry of the batch is stored."""
    await store.commit(reply=reply("m-0"), upserts=[strategy(1)], next_id=2)
    before = await snapshot(store)
    with pytest.raises(StoreError):
        await store.commit_batch(entries)
    assert await snapshot(store) == before
    assert await store.get_replies(["m-1", "m-2"]) == {}


async def test_empty_batch_is_a_no_op(store: StrategyStore) -> None:
    """Nothing to write, nothing written (and no reply sequence number spent)."""
    await store.commit_batch([])
    assert await snapshot(store) == ([], 1)


async def test_batch_larger_than_keep_replies(backend: Backend) -> None:
    """Pruning after a batch keeps exactly the newest keep_replies, by arrival order (D5)."""
    store = await backend.open(keep_replies=3)
    await store.commit(reply=reply("m-0"))
    await store.commit_batch([CommitEntry(reply(f"m-{n}")) for n in range(1, 6)])
    assert sorted(await store.get_replies([f"m-{n}" for n in range(6)])) == ["m-3", "m-4", "m-5"]
    await store.commit(reply=reply("m-6"))
    assert sorted(await store.get_replies([f"m-{n}" for n in range(7)])) == ["m-4", "m-5", "m-6"]


@pytest.mark.parametrize(
    ("asked", "found"),
    [
        ([], []),
        (["nope"], []),
        (["m-2", "nope", "m-1"], ["m-1", "m-2"]),
        (["m-1", "m-1"], ["m-1"]),
    ],
    ids=["none-asked", "unknown", "mixed", "repeated"],
)
async def test_get_replies(store: StrategyStore, asked: list[str], found: list[str]) -> None:
    """get_replies returns exactly the stored ones among the mids asked for."""
    await store.commit_batch([CommitEntry(reply("m-1")), CommitEntry(reply("m-2", "delete"))])
    got = await store.get_replies(asked)
    assert sorted(got) == found
    for mid in found:
        assert got[mid] == await store.get_reply(mid)
