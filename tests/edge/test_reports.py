"""What list/post and sync cost does not grow with every report (issue 14, cost that grows
with the site): each strategy's wire object is encoded once and kept until it or its live values
change; a sync's reply is stored as a small marker and rebuilt for a repeated mid."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime

import pytest

from gridguard.edge.report import LiveValues, WireReport, splice_data, to_wire
from gridguard.protocol import codec
from gridguard.protocol.models import ListPost, SyncResult
from gridguard.strategy.model import Strategy
from tests.edge.test_containment import create, envelope
from tests.edge.test_service import NOW_NS, reply, service, site

pytestmark = pytest.mark.unit

UID = "gg-demo-001"


class Live:
    def __init__(self) -> None:
        self.demand: dict[int, int] = {9: 120}
        self.down: set[tuple[str, int]] = set()
        self.changes = object()

    def dynamic_demand_kw(self) -> Mapping[int, int]:
        return self.demand

    def online(self, kind: str, device_id: int) -> bool:
        return (kind, device_id) not in self.down

    def revision(self) -> object:
        return self.changes

    def change(self) -> None:
        self.changes = object()


def strategy(strategy_id: int, meter_id: int, device_type: int = 2, **changes: object) -> Strategy:
    fields: dict[str, object] = {
        "id": strategy_id,
        "ele_meter_id": meter_id,
        "device_type": device_type,
        "streaming_status": 1,
        "streaming_condition": 100,
        "individual_phase_streaming_status": 2,
        "individual_phase_streaming_condition": 0,
        "over_demand_status": 1,
        "over_demand_condition": tuple(range(1000, 1012)),
        "dynamic_demand_status": 2,
        "dynamic_demand_percentage": 80.0,
        "updated_by": "",
        "created_at": "2024-06-06T08:59:20.21309056Z",
        "updated_at": "2024-06-06T08:59:20.21309056Z",
        **changes,
    }
    return Strategy(**fields)  # type: ignore[arg-type]


def plain(strategies: Mapping[int, Strategy], now: datetime, live: Live) -> list[bytes]:
    """The wire objects built from scratch, as the agent did before the cache."""
    return [
        to_wire(
            strategies[k],
            site=site(),
            now=now,
            dynamic_demand_kw=live.demand,
            online=live.online,
        )
        .model_dump_json(exclude_none=True)
        .encode()
        for k in sorted(strategies)
    ]


def test_cached_objects_equal_fresh_ones_through_every_kind_of_change() -> None:
    """Strategy changed, a device or meter going offline, demand, the month, a deletion: the
    cached encoding is always the one a fresh build gives."""
    report, live = WireReport(site()), Live()
    june = datetime(2024, 6, 6, 8, tzinfo=UTC)
    strategies = {1: strategy(1, 9), 2: strategy(2, 9, 3), 3: strategy(3, 10), 4: strategy(4, 9, 4)}

    def check(now: datetime = june) -> None:
        got = report.encoded(strategies, values(live, now))
        assert got == plain(strategies, now, live)

    check()
    strategies[1] = strategy(1, 9, streaming_condition=7)
    check()
    live.down.add(("storage", 3))
    live.change()
    check()
    live.down.add(("meter", 10))
    live.change()
    check()
    live.demand[10] = 55
    live.change()
    check()
    check(datetime(2024, 7, 1, 8, tzinfo=UTC))  # a new month, same revision
    del strategies[2]
    check()


def values(live: Live, now: datetime) -> LiveValues:
    return LiveValues(now, live.demand, live.online, live.revision())


def test_unchanged_objects_are_reused_not_encoded_again() -> None:
    report, live = WireReport(site()), Live()
    now = datetime(2024, 6, 6, 8, tzinfo=UTC)
    strategies = {1: strategy(1, 9), 3: strategy(3, 10)}
    first = report.encoded(strategies, values(live, now))
    strategies[3] = strategy(3, 10, streaming_condition=9)
    second = report.encoded(strategies, values(live, now))
    assert second[0] is first[0]
    assert second[1] is not first[1]
    assert report.stale(strategies, values(live, now)) == []
    live.down.add(("storage", 4))  # behind meter 10
    live.change()
    assert report.stale(strategies, values(live, now)) == [3]


def test_splice_puts_items_into_the_data_list() -> None:
    message = b'{"mid":"x","trace_id":"\\"data\\":[]","data":[],"code":200}'
    spliced = splice_data(message, [b'{"id":1}', b'{"id":2}'])
    assert json.loads(spliced)["data"] == [{"id": 1}, {"id": 2}]
    assert json.loads(spliced)["trace_id"] == '"data":[]'


async def test_list_post_is_the_same_message_as_before_the_cache() -> None:
    svc, _ = await service()
    await svc.handle("create", create(9))
    await svc.handle("create", create(10))
    listed = codec.parse_model(ListPost, svc.list_post())
    now = datetime.fromtimestamp(NOW_NS / 1e9, tz=UTC)
    expected = [json.loads(b) for b in plain(dict(enumerate(svc.strategies)), now, Live())]
    got = [json.loads(s.model_dump_json(exclude_none=True)) for s in listed.data]
    for item in expected:
        item["dynamic_demand"] = 0
    assert got == expected


async def test_a_repeated_sync_mid_gets_its_first_envelope_and_the_list_as_it_is_now() -> None:
    """The ruling (docs/protocol.md): a repeated sync mid is answered with the first reply's
    mid, reply and trace_id, and with today's strategies (sync asks for the current list)."""
    svc, store = await service()
    await svc.handle("create", create(9))
    mid = str(uuid.uuid4())
    first = await svc.handle("sync", envelope("sync", ..., mid, trace_id="t-1"))
    await svc.handle("create", create(10))
    again = await svc.handle("sync", envelope("sync", ..., mid, trace_id="t-1"))
    assert again.duplicate
    assert not again.changed
    one, two = (codec.parse_model(SyncResult, h.reply) for h in (first, again))
    assert (two.mid, two.reply, two.trace_id, two.code) == (one.mid, mid, "t-1", 200)
    assert [s.ele_meter_id for s in one.data] == [9]
    assert [s.ele_meter_id for s in two.data] == [9, 10]
    assert two.data == codec.parse_model(ListPost, svc.list_post()).data
    stored = await store.get_replies([f"sync/{mid}"])
    assert reply(stored[f"sync/{mid}"].payload)["data"] == []


async def test_a_sync_stored_whole_by_an_older_agent_is_rebuilt_too() -> None:
    svc, store = await service()
    await svc.handle("create", create(9))
    mid = str(uuid.uuid4())
    first = await svc.handle("sync", envelope("sync", ..., mid))
    stored = store.database.replies[f"sync/{mid}"]
    store.database.replies[f"sync/{mid}"] = type(stored)(
        stored.key, stored.op, first.reply, stored.digest
    )
    await svc.handle("delete", envelope("delete", {"id": 1}))
    again = await svc.handle("sync", envelope("sync", ..., mid))
    assert codec.parse_model(SyncResult, again.reply).data == []
