"""On the SQL store (a SQLite file): the reply table keeps a marker per sync, not its list,
a quarantined strategy's row is replaced under the unique (meter, type) constraint, and a reused
mid is still told from a retry after a restart."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from gridguard.edge.service import CommandService
from gridguard.protocol import codec
from gridguard.protocol.models import SyncResult
from gridguard.site.config import parse_site_config
from gridguard.store.base import CommitEntry, StoredReply, StoredStrategy
from gridguard.store.sql import SqlStrategyStore
from gridguard.testing.examples import CREATE_DATA
from gridguard.testing.sites import many_meters_site
from tests.edge.test_containment import create, envelope, stored_strategy
from tests.edge.test_service import NOW_NS, reply, site

pytestmark = pytest.mark.integration

UID = "gg-demo-001"


async def test_the_reply_table_does_not_grow_with_the_strategies(tmp_path: Path) -> None:
    """Store size: 200 strategies and 50 syncs; each sync keeps a marker of a few hundred
    bytes in the replies table, not the 250 kB list."""
    big = parse_site_config(many_meters_site(200, uid=UID))
    store = SqlStrategyStore(f"sqlite:///{tmp_path / 'edge.db'}")
    await store.open()
    try:
        svc = CommandService(site=big, store=store, clock_ns=lambda: NOW_NS)
        await svc.load()
        items = [{**CREATE_DATA, "ele_meter_id": m.id} for m in big.meters]
        assert (await svc.handle("update_all", envelope("update_all", items))).code == 200
        mids = [str(uuid.uuid4()) for _ in range(50)]
        sizes = []
        for mid in mids:
            handled = await svc.handle("sync", envelope("sync", ..., mid))
            assert len(codec.parse_model(SyncResult, handled.reply).data) == 200
            sizes.append(len(handled.reply))
        stored = await store.get_replies([f"sync/{m}" for m in mids])
        kept = sum(len(r.payload) for r in stored.values())
        assert len(stored) == 50
        assert kept < 50 * 400
        assert min(sizes) > 200 * 1000  # what storing them whole would have kept, each
    finally:
        await store.close()


async def test_create_on_a_quarantined_key_replaces_it_on_sqlite(tmp_path: Path) -> None:
    """On the SQL store the unique (meter, type) constraint holds: the replacement deletes the
    quarantined row in the same transaction, before the new one is inserted."""
    url = f"sqlite:///{tmp_path / 'edge.db'}"
    store = SqlStrategyStore(url)
    await store.open()
    try:
        bad = stored_strategy(1, 10)
        await store.commit_batch(
            [
                CommitEntry(
                    reply=StoredReply("create/x", "create", b"{}"),
                    upserts=[StoredStrategy(1, 10, 2, {**bad.document, "updated_by": None})],
                    next_id=2,
                )
            ]
        )
        svc = CommandService(site=site(), store=store, clock_ns=lambda: NOW_NS)
        await svc.load()
        assert [q.id for q in svc.quarantined] == [1]
        handled = await svc.handle("create", create(10))
        assert handled.code == 200, reply(handled.reply)["msg"]
        assert [(s.id, s.ele_meter_id) for s in await store.list_strategies()] == [(2, 10)]
    finally:
        await store.close()


async def test_reused_mid_is_told_from_a_retry_after_a_restart_on_sqlite(tmp_path: Path) -> None:
    """The fingerprint is stored with the reply (SQL store, migrated), so a restart keeps it."""
    url = f"sqlite:///{tmp_path / 'edge.db'}"
    mid = str(uuid.uuid4())
    store = SqlStrategyStore(url)
    await store.open()
    first = CommandService(site=site(), store=store, clock_ns=lambda: NOW_NS)
    await first.load()
    assert (await first.handle("create", create(9, mid=mid))).code == 200
    await store.close()
    store = SqlStrategyStore(url)
    await store.open()
    try:
        again = CommandService(site=site(), store=store, clock_ns=lambda: NOW_NS)
        await again.load()
        assert (await again.handle("create", create(10, mid=mid))).code == 400
        assert (await again.handle("create", create(9, mid=mid))).code == 200
        assert [s.ele_meter_id for s in again.strategies] == [9]
    finally:
        await store.close()
