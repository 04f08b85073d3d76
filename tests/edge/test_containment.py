"""No payload and no failure inside a handler stops the command service (issue: poison
messages): every command is answered, a 500 names no path or secret, one broken command never
gives the others of its group commit a 500, and a command that broke the handler twice is
answered from then on without being run again (dead-lettered)."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from typing import Any

import pytest

from gridguard.edge.service import CommandService
from gridguard.protocol import codec
from gridguard.protocol.models import ListPost
from gridguard.store.base import CommitEntry, StoredStrategy, StoreError
from gridguard.store.memory import MemoryDatabase, MemoryStrategyStore
from gridguard.strategy import rules
from tests.edge.test_service import NOW_NS, reply, service, site, spec_command

pytestmark = pytest.mark.unit

UID = "gg-demo-001"


def envelope(op: str, data: Any, mid: str | None = None, **extra: Any) -> bytes:
    message = {
        "mid": str(uuid.uuid4()) if mid is None else mid,
        "type": f"streaming_overdemand_{op}",
        "device_uid": UID,
        "timestamp": 1_717_664_360_213,
        **({} if data is ... else {"data": data}),
        **extra,
    }
    return json.dumps(message).encode()


def create(meter_id: int = 9, mid: str | None = None, **changes: Any) -> bytes:
    data = {
        "ele_meter_id": meter_id,
        "streaming_status": 1,
        "streaming_condition": 100,
        "individual_phase_streaming_status": 2,
        "over_demand_status": 1,
        "over_demand_condition": [2000] * 12,
        "dynamic_demand_percentage": 80,
        **changes,
    }
    return envelope("create", data, mid)


async def test_unexpected_error_is_500_naming_no_path_and_others_still_served(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bug in one command's handling is that command's 500; the batch goes on."""
    svc, _ = await service()

    def broken(*_args: object, **_kwargs: object) -> rules.Outcome:
        raise RuntimeError("boom in /var/lib/gridguard/edge.db with password s3cret")

    monkeypatch.setattr(rules, "apply_delete", broken)
    handled = await svc.handle_batch(
        [
            ("create", create(9)),
            ("delete", envelope("delete", {"id": 1})),
            ("sync", envelope("sync", ...)),
        ]
    )
    assert [h.code for h in handled] == [200, 500, 200]
    msg = reply(handled[1].reply)["msg"]
    assert msg.startswith("internal error")
    assert "/var/lib" not in msg
    assert "s3cret" not in msg
    assert [s.ele_meter_id for s in svc.strategies] == [9]


async def test_a_command_that_broke_the_handler_twice_is_dead_lettered(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Twice broken: answered with a stored 500 and logged with mid and traceback; a third
    delivery is answered from the store without running the handler again."""
    svc, _ = await service()
    calls: list[int] = []

    def broken(*_args: object, **_kwargs: object) -> rules.Outcome:
        calls.append(1)
        raise RuntimeError("boom")

    monkeypatch.setattr(rules, "apply_delete", broken)
    mid = str(uuid.uuid4())
    poison = envelope("delete", {"id": 1}, mid)
    caplog.set_level(logging.ERROR, "gridguard.edge.commands")
    first = await svc.handle("delete", poison)
    second = await svc.handle("delete", poison)
    third = await svc.handle("delete", poison)
    assert [first.code, second.code, third.code] == [500, 500, 500]
    assert third.reply == second.reply
    assert len(calls) == 2
    dead = [r for r in caplog.records if "dead-letter" in r.getMessage()]
    assert len(dead) == 1
    assert mid in dead[0].getMessage()
    assert dead[0].exc_info is not None


async def test_empty_mid_twice_is_400_not_a_store_error() -> None:
    """``mid: ""`` is refused as not a UUID and never stored (no UNIQUE failure, no 500)."""
    svc, store = await service()
    payload = create(9, mid="")
    handled = [await svc.handle("create", payload) for _ in range(2)]
    assert [h.code for h in handled] == [400, 400]
    assert "mid: must be a UUID" in reply(handled[1].reply)["msg"]
    assert await store.reply_keys() == []


async def test_failed_group_commit_retries_one_by_one() -> None:
    """A commit that fails for one command's writes fails only that command."""
    svc, store = await service()
    poison_mid = str(uuid.uuid4())
    real_commit = store.commit_batch

    async def refuses_poison(entries: Sequence[CommitEntry]) -> None:
        if any(poison_mid in e.reply.key for e in entries):
            raise StoreError("store: cannot commit: simulated bad row")
        await real_commit(entries)

    store.commit_batch = refuses_poison  # type: ignore[method-assign]
    handled = await svc.handle_batch(
        [
            ("create", create(9)),
            ("create", create(10, mid=poison_mid)),
            ("create", create(9, device_type=3)),
        ]
    )
    assert [h.code for h in handled] == [200, 500, 200]
    assert [(s.ele_meter_id, s.device_type) for s in svc.strategies] == [(9, 2), (9, 3)]
    assert [s.device_type for s in await store.list_strategies()] == [2, 3]


async def test_surrogate_in_updated_by_is_400_and_reports_still_encode() -> None:
    """An unpaired surrogate is refused before anything is stored; list/post still works."""
    svc, store = await service()
    payload = create(9).replace(
        b'"dynamic_demand_percentage"', b'"updated_by": "x\\ud800", "dynamic_demand_percentage"'
    )
    handled = await svc.handle("create", payload)
    assert handled.code == 400
    assert "data.updated_by" in reply(handled.reply)["msg"]
    assert await store.list_strategies() == []
    codec.parse_model(ListPost, svc.list_post())


async def test_mid_reused_with_different_data_is_400_and_changes_nothing() -> None:
    """D5 done right: the same mid and op with other data is refused, not answered with the
    first command's reply; the same data with a new timestamp is a retry (same reply)."""
    svc, _ = await service()
    mid = str(uuid.uuid4())
    first = await svc.handle("create", create(9, mid=mid))
    retry = await svc.handle(
        "create", create(9, mid=mid).replace(b"1717664360213", b"1717664399999")
    )
    assert retry.reply == first.reply
    other = await svc.handle("create", create(10, mid=mid))
    assert other.code == 400
    assert f"mid {mid} was already used" in reply(other.reply)["msg"]
    assert [s.ele_meter_id for s in svc.strategies] == [9]


def stored_strategy(strategy_id: int, meter_id: int, **changes: Any) -> StoredStrategy:
    document = {
        "id": strategy_id,
        "ele_meter_id": meter_id,
        "device_type": 2,
        "streaming_status": 1,
        "streaming_condition": 100,
        "individual_phase_streaming_status": 2,
        "individual_phase_streaming_condition": 0,
        "over_demand_status": 1,
        "over_demand_condition": [2000] * 12,
        "dynamic_demand_status": 2,
        "dynamic_demand_percentage": 80.0,
        "updated_by": "",
        "created_at": "2024-06-06T08:59:20.21309056Z",
        "updated_at": "2024-06-06T08:59:20.21309056Z",
        **changes,
    }
    return StoredStrategy(strategy_id, meter_id, 2, document)


async def quarantined_service(
    bad: dict[str, Any] | None = None,
) -> tuple[CommandService, MemoryStrategyStore]:
    """Strategy 1 (meter 9) serves; strategy 2 (meter 10, storage) is quarantined."""
    db = MemoryDatabase()
    bad = bad or {"streaming_condition": int("9" * 310)}
    db.strategies = {1: stored_strategy(1, 9), 2: stored_strategy(2, 10, **bad)}
    db.next_id = 3
    store = MemoryStrategyStore(db)
    await store.open()
    svc = CommandService(site=site(), store=store, clock_ns=lambda: NOW_NS)
    await svc.load()
    assert [q.id for q in svc.quarantined] == [2]
    return svc, store


@pytest.mark.parametrize(
    "bad",
    [
        {"streaming_condition": int("9" * 310)},
        {"updated_by": "x\ud800"},
        {"dynamic_demand_percentage": float("nan")},
        {"over_demand_condition": [1] * 3},
        {"streaming_status": None},
    ],
    ids=["huge-condition", "surrogate", "nan-percentage", "short-months", "missing-status"],
)
async def test_a_bad_stored_strategy_is_quarantined_not_fatal(bad: dict[str, Any]) -> None:
    """Start-up validates what it reads: a bad row is reported and not enforced; the rest
    loads and the service answers."""
    svc, _ = await quarantined_service(bad)
    assert [s.id for s in svc.strategies] == [1]
    assert svc.quarantined[0].reason
    listed = codec.parse_model(ListPost, svc.list_post())
    assert [s.id for s in listed.data] == [1]
    synced = await svc.handle("sync", spec_command("02-sync-command.json", UID))
    assert synced.code == 200


async def test_create_on_a_quarantined_meter_and_type_replaces_it() -> None:
    """The platform never sees a quarantined strategy (list/post leaves it out), so its create
    for that meter and type is the operator's fix: it replaces the quarantined row (never a
    500 from the store's unique (meter, type) constraint)."""
    svc, store = await quarantined_service()
    handled = await svc.handle("create", create(10))
    assert handled.code == 200, reply(handled.reply)["msg"]
    assert reply(handled.reply)["data"] == {"id": 3}
    assert svc.quarantined == []
    assert [(s.id, s.ele_meter_id) for s in await store.list_strategies()] == [(1, 9), (3, 10)]
    assert [s.id for s in svc.strategies] == [1, 3]


async def test_update_all_creating_on_a_quarantined_key_replaces_it() -> None:
    svc, store = await quarantined_service()
    item = json.loads(create(10))["data"]
    handled = await svc.handle("update_all", envelope("update_all", [item]))
    assert handled.code == 200, reply(handled.reply)["msg"]
    assert [s.id for s in await store.list_strategies()] == [1, 3]
    assert svc.quarantined == []


async def test_update_moving_onto_a_quarantined_key_replaces_it() -> None:
    svc, store = await quarantined_service()
    handled = await svc.handle("update", envelope("update", {"id": 1, "ele_meter_id": 10}))
    assert handled.code == 200, reply(handled.reply)["msg"]
    assert [(s.id, s.ele_meter_id) for s in await store.list_strategies()] == [(1, 10)]
    assert svc.quarantined == []


async def test_update_of_a_quarantined_strategy_is_400_naming_it() -> None:
    svc, store = await quarantined_service()
    for op, data in (
        ("update", {"id": 2, "streaming_condition": 100}),
        ("update_all", [{"id": 2, "streaming_condition": 100}]),
    ):
        handled = await svc.handle(op, envelope(op, data))
        assert handled.code == 400
        msg = reply(handled.reply)["msg"]
        assert "strategy 2 is quarantined" in msg
        assert "streaming_condition" in msg  # the reason it was quarantined
    assert [s.id for s in await store.list_strategies()] == [1, 2]
    assert [q.id for q in svc.quarantined] == [2]


async def test_delete_of_a_quarantined_strategy_removes_it() -> None:
    svc, store = await quarantined_service()
    handled = await svc.handle("delete", envelope("delete", {"id": 2}))
    assert handled.code == 200, reply(handled.reply)["msg"]
    assert handled.changed
    assert [s.id for s in await store.list_strategies()] == [1]
    assert svc.quarantined == []
