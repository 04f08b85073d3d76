"""D7-D11 as tables: the command, the state before, and what must come out."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from gridguard.protocol.models import IdData, StrategyCreate, StrategyItem, StrategyUpdate
from gridguard.strategy import rules
from gridguard.strategy.model import Strategy

pytestmark = pytest.mark.unit

SITE = rules.SiteView({9: True, 10: False})
NOW = "2024-06-06T08:59:20.21309056Z"
LATER = "2024-06-07T00:00:00Z"
CREATE: dict[str, Any] = {
    "ele_meter_id": 9,
    "streaming_status": 1,
    "streaming_condition": 1000,
    "individual_phase_streaming_status": 2,
    "individual_phase_streaming_condition": 100,
    "over_demand_status": 1,
    "over_demand_condition": [2000] * 12,
    "dynamic_demand_status": 1,
    "dynamic_demand_percentage": 80,
}


def stored(**changes: Any) -> Strategy:
    base = rules.apply_create({}, StrategyCreate(**CREATE), site=SITE, next_id=1, now=NOW)
    strategy = base.upserts[0]
    return Strategy.from_document({**strategy.document(), **changes})


def test_create_assigns_id_and_defaults() -> None:
    """D8: id from the counter, device_type 2, updated_by 'mqtt', reply {"id": N}."""
    out = rules.apply_create({}, StrategyCreate(**CREATE), site=SITE, next_id=7, now=NOW)
    (created,) = out.upserts
    assert (created.id, created.device_type, created.updated_by) == (7, 2, "mqtt")
    assert out.reply_data == {"id": 7}
    assert out.next_id == 8
    assert created.created_at == created.updated_at == NOW


def test_create_absent_conditions_default_to_zero() -> None:
    """D14: an enabled check whose condition is absent uses 0; dynamic status defaults to 2."""
    data = {
        k: v for k, v in CREATE.items() if k not in {"streaming_condition", "dynamic_demand_status"}
    }
    (created,) = rules.apply_create(
        {}, StrategyCreate(**data), site=SITE, next_id=1, now=NOW
    ).upserts
    assert created.streaming_condition == 0
    assert created.dynamic_demand_status == 2


def test_create_ignores_server_owned_fields() -> None:
    """D8: id/devices/ele_meter/dynamic_demand sent by the caller are ignored."""
    data = StrategyCreate.model_validate({**CREATE, "id": 99, "dynamic_demand": 5, "devices": [1]})
    (created,) = rules.apply_create({}, data, site=SITE, next_id=1, now=NOW).upserts
    assert created.id == 1


@pytest.mark.parametrize(
    ("state", "data", "msg"),
    [
        (
            {},
            {**CREATE, "ele_meter_id": 11},
            "data.ele_meter_id: meter 11 is not in this EMS's site configuration (meters: 9, 10)",
        ),
        (
            {},
            {**CREATE, "ele_meter_id": 10, "individual_phase_streaming_status": 1},
            (
                "data.individual_phase_streaming_status: meter 10 gives no per-phase power, so "
                "single-phase anti-backflow cannot be enabled (D16)"
            ),
        ),
        (
            {1: None},
            CREATE,
            "data: meter 9 already has a storage strategy (id 1); update it instead (D7)",
        ),
    ],
    ids=["unknown-meter", "phase-on-meter-without-phases", "duplicate-meter-and-class"],
)
def test_create_rejections(state: dict[int, None], data: dict[str, Any], msg: str) -> None:
    """D7/D16: the site decides what may be created."""
    current = {k: stored() for k in state}
    with pytest.raises(rules.StrategyRejectedError) as caught:
        rules.apply_create(current, StrategyCreate(**data), site=SITE, next_id=2, now=NOW)
    assert str(caught.value) == msg


def test_same_meter_other_class_is_allowed() -> None:
    """D7: uniqueness is per (meter, class): a PV strategy beside a storage one is fine."""
    out = rules.apply_create(
        {1: stored()}, StrategyCreate(**{**CREATE, "device_type": 3}), site=SITE, next_id=2, now=NOW
    )
    assert out.upserts[0].device_type == 3


def test_update_merges_present_fields_only() -> None:
    """D9: fields present replace, absent ones keep their values, updated_at moves."""
    out = rules.apply_update(
        {1: stored()}, StrategyUpdate(id=1, streaming_condition=50), site=SITE, now=LATER
    )
    (updated,) = out.upserts
    assert updated.streaming_condition == 50
    assert updated.over_demand_condition == (2000,) * 12
    assert (updated.created_at, updated.updated_at) == (NOW, LATER)


@pytest.mark.parametrize(
    ("data", "msg"),
    [
        ({"id": 7}, "data.id: strategy 7 not found"),
        (
            {"id": 1, "device_type": 3},
            "data: meter 9 already has a PV strategy (id 2); update it instead (D7)",
        ),
        (
            {"id": 1, "ele_meter_id": 12},
            "data.ele_meter_id: meter 12 is not in this EMS's site configuration (meters: 9, 10)",
        ),
    ],
    ids=["unknown-id", "move-onto-taken-class", "move-to-unknown-meter"],
)
def test_update_rejections(data: dict[str, Any], msg: str) -> None:
    """D9: changing meter/class is allowed only while D7 holds."""
    current = {1: stored(), 2: stored(id=2, device_type=3)}
    with pytest.raises(rules.StrategyRejectedError) as caught:
        rules.apply_update(current, StrategyUpdate(**data), site=SITE, now=LATER)
    assert str(caught.value) == msg


def test_delete_known_and_unknown() -> None:
    """D10: delete removes; an unknown id is a 400 naming it."""
    assert rules.apply_delete({1: stored()}, IdData(id=1)).deletes == (1,)
    with pytest.raises(rules.StrategyRejectedError, match="strategy 7 not found"):
        rules.apply_delete({1: stored()}, IdData(id=7))


def test_update_all_matches_by_id_then_key_and_creates_the_rest() -> None:
    """D11: id match, (meter, class) match, else create; reply ids in item order."""
    current = {1: stored(), 5: stored(id=5, ele_meter_id=10)}
    items = [
        StrategyItem(ele_meter_id=10, device_type=2, streaming_condition=7),  # matches id 5
        StrategyItem(id=1, streaming_condition=3),
        StrategyItem(**{**CREATE, "device_type": 4}),  # new
    ]
    out = rules.apply_update_all(current, items, site=SITE, next_id=6, now=LATER)
    assert out.reply_data == [{"id": 5}, {"id": 1}, {"id": 6}]
    by_id = {s.id: s for s in out.upserts}
    assert (by_id[5].streaming_condition, by_id[1].streaming_condition) == (7, 3)
    assert by_id[6].device_type == 4
    assert out.next_id == 7
    assert out.deletes == ()


@pytest.mark.parametrize(
    ("items", "msg"),
    [
        (
            [CREATE, {**CREATE, "ele_meter_id": 11}],
            (
                "data[1].ele_meter_id: meter 11 is not in this EMS's site configuration "
                "(meters: 9, 10)"
            ),
        ),
        ([{"id": 3}], "data[0].id: strategy 3 not found"),
        (
            [{"ele_meter_id": 10, "device_type": 3}],
            "data[0].streaming_status: required field missing",
        ),
        (
            [{**CREATE, "device_type": 3}, {**CREATE, "device_type": 3}],
            (
                "data[1]: names the same strategy as data[0] (id 1); "
                "put each strategy in the batch once"
            ),
        ),
    ],
    ids=[
        "second-item-bad-meter",
        "unknown-id",
        "new-item-missing-required",
        "two-items-same-key-both-new",
    ],
)
def test_update_all_is_all_or_nothing(items: list[dict[str, Any]], msg: str) -> None:
    """D11: any invalid item rejects the whole batch, naming the item index."""
    parsed = [StrategyItem.model_validate(i) for i in items]
    with pytest.raises(rules.StrategyRejectedError) as caught:
        rules.apply_update_all({}, parsed, site=SITE, next_id=1, now=NOW)
    assert str(caught.value) == msg


def test_document_has_every_field_as_plain_json() -> None:
    """The stored document: every dataclass field, the monthly tuple as a list, and back."""
    strategy = stored(over_demand_condition=[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])
    document = strategy.document()
    assert set(document) == {f.name for f in dataclasses.fields(Strategy)}
    assert document["over_demand_condition"] == list(range(1, 13))
    assert json.loads(json.dumps(document)) == document
    assert Strategy.from_document(document) == strategy
