"""The StrategyStore contract, run on every backend: memory, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from gridguard.store import StoredReply, StoredStrategy, StoreError, StrategyStore
from tests.store.conftest import Backend

DOC = {
    "streaming_status": 1,
    "streaming_condition": 0,
    "over_demand_condition": [100, 100, 120, 120, 150, 150, 180, 180, 150, 120, 100, 100],
    "dynamic_demand_percentage": 92.5,
    "updated_by": "调度员 mqtt",
    "ele_meter": {"id": 7, "name": "关口表", "nested": [{"x": None}, True]},
}


def strategy(sid: int, meter: int = 7, device_type: int = 2, **fields: object) -> StoredStrategy:
    return StoredStrategy(sid, meter, device_type, {**DOC, "id": sid, **fields})


def reply(mid: str, op: str = "create") -> StoredReply:
    return StoredReply(mid, op, f'{{"reply":"{mid}","code":200}}'.encode())


async def snapshot(store: StrategyStore) -> tuple[object, ...]:
    return (await store.list_strategies(), await store.next_id())


async def test_empty_store(store: StrategyStore) -> None:
    """A new store has no strategies, ids start at 1 (D7), no reply, no state."""
    assert await store.list_strategies() == []
    assert await store.next_id() == 1
    assert await store.get_reply("m-1") is None
    assert await store.load_state("demand") is None


async def test_create_reads_back(store: StrategyStore) -> None:
    """A create's strategy, id counter and reply are all there after commit."""
    await store.commit(reply=reply("m-1"), upserts=[strategy(1)], next_id=2)
    assert await store.list_strategies() == [strategy(1)]
    assert await store.next_id() == 2
    assert await store.get_reply("m-1") == reply("m-1")


async def test_update_delete_and_order(store: StrategyStore) -> None:
    """Upserts replace the whole document, deletes remove, listing is in id order."""
    await store.commit(reply=reply("m-1"), upserts=[strategy(3, meter=1), strategy(1)], next_id=4)
    await store.commit(reply=reply("m-2"), upserts=[strategy(2, meter=2)], next_id=4)
    await store.commit(
        reply=reply("m-3", "update_all"),
        upserts=[StoredStrategy(1, 7, 2, {"streaming_status": 2})],
        deletes=[3],
    )
    assert await store.list_strategies() == [
        StoredStrategy(1, 7, 2, {"streaming_status": 2}),
        strategy(2, meter=2),
    ]
    assert await store.next_id() == 4


async def test_swap_keys_in_one_commit(store: StrategyStore) -> None:
    """Only the final state must hold D7: two strategies may swap meters in one update_all."""
    await store.commit(reply=reply("m-1"), upserts=[strategy(1, meter=1), strategy(2, meter=2)])
    await store.commit(reply=reply("m-2"), upserts=[strategy(1, meter=2), strategy(2, meter=1)])
    assert [(s.id, s.ele_meter_id) for s in await store.list_strategies()] == [(1, 2), (2, 1)]


@dataclass(frozen=True)
class Bad:
    """A commit the store must refuse whole."""

    upserts: tuple[StoredStrategy, ...] = ()
    deletes: tuple[int, ...] = ()
    mid: str = "m-bad"


BAD_COMMITS = [
    # D7: strategy 1 already binds (7, 2); the DB constraint holds even if validation missed it.
    Bad(upserts=(strategy(5),)),
    # Two new strategies on the same (meter, type) in one batch.
    Bad(upserts=(strategy(5, meter=9), strategy(6, meter=9))),
    # The same id twice in one batch.
    Bad(upserts=(strategy(5, meter=9), strategy(5, meter=10))),
    # The mid was answered before (D5): the service must have replied from the table instead.
    Bad(upserts=(strategy(5, meter=9),), mid="m-1"),
    # A document that is not JSON.
    Bad(upserts=(strategy(5, meter=9, when=object()),)),
    # A delete that would succeed, next to an upsert that fails: neither happens.
    Bad(upserts=(strategy(5, meter=8), strategy(6, meter=8)), deletes=(1,)),
]


@pytest.mark.parametrize(
    "bad",
    BAD_COMMITS,
    ids=["unique-meter-type", "unique-in-batch", "id-twice", "mid-reused", "not-json", "partial"],
)
async def test_failed_commit_changes_nothing(store: StrategyStore, bad: Bad) -> None:
    """A refused commit raises StoreError and stores neither its changes nor its reply."""
    await store.commit(reply=reply("m-1"), upserts=[strategy(1)], next_id=2)
    before = await snapshot(store)
    with pytest.raises(StoreError):
        await store.commit(
            reply=reply(bad.mid), upserts=bad.upserts, deletes=bad.deletes, next_id=7
        )
    assert await snapshot(store) == before
    assert await store.get_reply("m-bad") is None
    assert await store.get_reply("m-1") == reply("m-1")
    await store.commit(reply=reply("m-after"), upserts=[strategy(2, meter=3)], next_id=3)
    assert await store.next_id() == 3


async def test_reply_payload_is_exact_bytes(store: StrategyStore) -> None:
    """Replies come back byte for byte, whatever the bytes are."""
    payload = bytes(range(256)) + "结果".encode()
    await store.commit(reply=StoredReply("m-bin", "delete", payload))
    assert await store.get_reply("m-bin") == StoredReply("m-bin", "delete", payload)


async def test_replies_pruned_oldest_first(backend: Backend) -> None:
    """Only the newest keep_replies replies stay (D5), also across a reopen."""
    store = await backend.open(keep_replies=3)
    for n in range(5):
        await store.commit(reply=reply(f"m-{n}"))
    assert [await store.get_reply(f"m-{n}") is not None for n in range(5)] == [
        False, False, True, True, True,
    ]  # fmt: skip
    await store.close()
    again = await backend.open(keep_replies=3)
    await again.commit(reply=reply("m-5"))
    assert [await again.get_reply(f"m-{n}") is not None for n in range(6)] == [
        False, False, False, True, True, True,
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("commits", "expected"),
    [
        ([(None, ())], 1),
        ([(5, ()), (3, ())], 5),
        ([(None, (9,))], 10),
        ([(4, (2,)), (None, ())], 4),
        ([(2, (1,)), (None, (1,)), (3, ())], 3),
        ([(12, ()), (None, (4,)), (8, (5,))], 12),
    ],
    ids=[
        "no-next-id-keeps-1",
        "lower-next-id-ignored",
        "upserted-id-lifts-counter",
        "given-next-id-above-ids",
        "update-does-not-move",
        "never-backwards",
    ],
)
async def test_next_id_never_goes_backwards(
    store: StrategyStore, commits: list[tuple[int | None, tuple[int, ...]]], expected: int
) -> None:
    """The counter only rises, and always past every id stored (D7: ids never reused)."""
    for n, (next_id, ids) in enumerate(commits):
        upserts = [strategy(i, meter=100 + i) for i in ids]
        await store.commit(reply=reply(f"m-{n}"), upserts=upserts, next_id=next_id)
    assert await store.next_id() == expected


async def test_deleted_id_not_reused(store: StrategyStore) -> None:
    """Deleting the newest strategy does not hand its id out again (D7)."""
    await store.commit(reply=reply("m-1"), upserts=[strategy(1)], next_id=2)
    await store.commit(reply=reply("m-2", "delete"), deletes=[1])
    assert await store.list_strategies() == []
    assert await store.next_id() == 2


async def test_state_save_load(store: StrategyStore) -> None:
    """State documents are kept per key, the last save wins (D18)."""
    await store.save_state("demand", {"month": "2024-06", "max_kw": 410.5})
    await store.save_state("other", {"x": [1, 2]})
    await store.save_state("demand", {"month": "2024-07", "max_kw": 0})
    assert await store.load_state("demand") == {"month": "2024-07", "max_kw": 0}
    assert await store.load_state("other") == {"x": [1, 2]}


async def test_states_saved_together(store: StrategyStore) -> None:
    """Many state documents in one call (one transaction): new keys and replaced ones."""
    await store.save_state("control/meter/1", {"max_kw": 1})
    states = {f"control/meter/{n}": {"max_kw": n * 10} for n in range(1, 101)}
    await store.save_states(states)
    assert await store.load_state("control/meter/1") == {"max_kw": 10}
    assert await store.load_state("control/meter/100") == {"max_kw": 1000}
    await store.save_states({})  # nothing to do is fine


async def test_reopen_keeps_everything(backend: Backend) -> None:
    """After close and a new store on the same place, every table is as committed (D5, D18)."""
    store = await backend.open()
    await store.commit(reply=reply("m-1"), upserts=[strategy(1), strategy(2, meter=8)], next_id=3)
    await store.commit(reply=reply("m-2", "delete"), deletes=[2])
    await store.save_state("demand", {"max_kw": 12})
    await store.close()
    again = await backend.open()
    assert await again.list_strategies() == [strategy(1)]
    assert await again.next_id() == 3
    assert await again.get_reply("m-1") == reply("m-1")
    assert await again.get_reply("m-2") == reply("m-2", "delete")
    assert await again.load_state("demand") == {"max_kw": 12}


async def test_stored_document_is_a_copy(store: StrategyStore) -> None:
    """Changing a dict after commit or after reading it does not change the store."""
    mine = strategy(1)
    await store.commit(reply=reply("m-1"), upserts=[mine])
    mine.document["streaming_status"] = 2
    (read,) = await store.list_strategies()
    read.document["ele_meter"]["id"] = 99
    assert await store.list_strategies() == [strategy(1)]


async def test_concurrent_commits_are_serialized(store: StrategyStore) -> None:
    """Commits started together all land, one after the other (one writer)."""
    await asyncio.gather(
        *(
            store.commit(reply=reply(f"m-{n}"), upserts=[strategy(n, meter=n)], next_id=n + 1)
            for n in range(1, 21)
        )
    )
    assert [s.id for s in await store.list_strategies()] == list(range(1, 21))
    assert await store.next_id() == 21


async def test_closed_store_refuses(backend: Backend) -> None:
    """A closed store raises StoreError (a 500), never a driver error."""
    store = await backend.open()
    await store.close()
    with pytest.raises(StoreError, match="not open"):
        await store.list_strategies()
    with pytest.raises(StoreError, match="not open"):
        await store.commit(reply=reply("m-1"))
