"""The command service without MQTT: codes, durability order, idempotency (D2-D13)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import pytest

from gridguard.edge.service import CommandService
from gridguard.protocol import codec
from gridguard.protocol.models import CreateResult, ListPost, SyncResult
from gridguard.site.config import SiteConfig, load_site_config
from gridguard.store.memory import MemoryDatabase, MemoryStrategyStore

pytestmark = pytest.mark.unit

EXAMPLE = Path(__file__).parents[2] / "examples" / "edge.toml"
FIXTURES = Path(__file__).parents[1] / "fixtures" / "spec"
NOW_NS = 1_717_664_360_213_090_560  # 2024-06-06T08:59:20.21309056Z


def site() -> SiteConfig:
    return load_site_config(EXAMPLE)


def spec_command(name: str, device_uid: str, mid: str | None = None) -> bytes:
    text = (FIXTURES / name).read_text().replace("iYRkfVpi77", device_uid)
    if mid is not None:
        text = text.replace("ee2e8f09-b280-4e4d-bcb9-1529b703cfed", mid)
    return text.encode()


async def service(db: MemoryDatabase | None = None) -> tuple[CommandService, MemoryStrategyStore]:
    store = MemoryStrategyStore(db) if db is not None else MemoryStrategyStore()
    await store.open()
    svc = CommandService(site=site(), store=store, clock_ns=lambda: NOW_NS)
    await svc.load()
    return svc, store


def reply(payload: bytes) -> dict[str, Any]:
    return cast("dict[str, Any]", json.loads(payload))


async def test_spec_create_example_gets_200_and_id() -> None:
    """The spec's create example, verbatim, is accepted (D8) and answered per D2."""
    svc, _ = await service()
    handled = await svc.handle("create", spec_command("04-create-command.json", "gg-demo-001"))
    result = codec.parse_model(CreateResult, handled.reply)
    assert (result.code, result.msg, result.data and result.data.id) == (200, "", 1)
    assert result.reply == "ee2e8f09-b280-4e4d-bcb9-1529b703cfed"
    assert result.trace_id == "577f5df0-65d6-432d-8aac-0116e9530152"
    assert result.device_uid == "gg-demo-001"
    assert result.mid != result.reply
    assert handled.changed


async def test_list_is_fully_populated() -> None:
    """D7/D13/D14: ele_meter and devices from the site, month condition, times."""
    svc, _ = await service()
    await svc.handle("create", spec_command("04-create-command.json", "gg-demo-001"))
    listed = codec.parse_model(ListPost, svc.list_post())
    (strategy,) = listed.data
    assert strategy.ele_meter.id == 9
    assert strategy.ele_meter.ele_device_type.name == "Acrel-ADW300"
    assert [d.id for d in strategy.devices] == [3]  # storage behind meter 9
    assert strategy.current_over_demand_condition == 2000
    assert strategy.created_at == "2024-06-06T08:59:20.21309056Z"
    assert listed.type == "streaming_overdemand_list"


async def test_sync_reply_carries_full_list() -> None:
    """D12: sync/result has code 200 and data = the list/post data."""
    svc, _ = await service()
    await svc.handle("create", spec_command("04-create-command.json", "gg-demo-001"))
    handled = await svc.handle("sync", spec_command("02-sync-command.json", "gg-demo-001"))
    result = codec.parse_model(SyncResult, handled.reply)
    assert result.code == 200
    assert [s.id for s in result.data] == [1]
    listed = codec.parse_model(ListPost, svc.list_post())
    assert result.data == listed.data


async def test_repeated_mid_gets_identical_reply_and_changes_nothing() -> None:
    """D5: at-least-once delivery is made idempotent by mid, across a restart too."""
    db = MemoryDatabase()
    svc, _ = await service(db)
    payload = spec_command("04-create-command.json", "gg-demo-001")
    first = await svc.handle("create", payload)
    again = await svc.handle("create", payload)
    assert again.reply == first.reply
    assert again.duplicate
    assert not again.changed
    restarted, _ = await service(db)
    after_restart = await restarted.handle("create", payload)
    assert after_restart.reply == first.reply
    assert len(restarted.strategies) == 1


async def test_bad_input_is_400_and_changes_nothing() -> None:
    """D3: a 400 names field and rule; the stored state is untouched."""
    svc, _ = await service()
    await svc.handle("create", spec_command("04-create-command.json", "gg-demo-001"))
    before = svc.strategies
    bad = spec_command("06-update-command.json", "gg-demo-001").replace(
        b'"streaming_status": 1', b'"streaming_status": 5'
    )
    handled = await svc.handle("update", bad)
    assert handled.code == 400
    assert reply(handled.reply)["msg"] == (
        "data.streaming_status: must be 1 (enabled) or 2 (disabled), got 5"
    )
    assert svc.strategies == before


async def test_unreadable_json_still_answered_with_mid() -> None:
    """D3: broken JSON gets a 400 on the op's result with reply = the mid found."""
    svc, _ = await service()
    payload = b'{"mid": "3e681859-6917-4b9a-9afd-3f162cd185bd", "type": '
    handled = await svc.handle("delete", payload)
    body = reply(handled.reply)
    assert (body["code"], body["reply"], body["type"]) == (
        400,
        "3e681859-6917-4b9a-9afd-3f162cd185bd",
        "streaming_overdemand_delete",
    )
    assert body["msg"].startswith("invalid JSON at line 1 column")


async def test_store_failure_is_500_and_not_remembered() -> None:
    """D3: storage unavailable is a 500; the retry with the same mid is processed anew."""
    svc, store = await service()
    payload = spec_command("04-create-command.json", "gg-demo-001")
    store.fail_next_commit = True
    failed = await svc.handle("create", payload)
    assert failed.code == 500
    assert svc.strategies == []
    retried = await svc.handle("create", payload)
    assert retried.code == 200
    assert len(svc.strategies) == 1


@pytest.mark.parametrize(
    ("name", "op"),
    [
        ("06-update-command.json", "update"),
        ("08-delete-command.json", "delete"),
        ("10-update_all-command.json", "update_all"),
    ],
    ids=["update", "delete", "update_all"],
)
async def test_spec_examples_after_create_get_200(name: str, op: str) -> None:
    """Each spec command example, verbatim, gets 200 once strategy 1 exists."""
    svc, _ = await service()
    await svc.handle(
        "create",
        spec_command(
            "04-create-command.json", "gg-demo-001", mid="11111111-2222-3333-4444-555555555555"
        ),
    )
    handled = await svc.handle(op, spec_command(name, "gg-demo-001"))
    assert reply(handled.reply)["code"] == 200, reply(handled.reply)["msg"]
