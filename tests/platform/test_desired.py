"""The desired set follows each successful command by the EMS's own rules; drift and reconcile."""

from __future__ import annotations

from typing import Any

import pytest

from gridguard.platform import desired
from gridguard.testing.examples import CREATE_DATA

pytestmark = pytest.mark.unit

NOW = "2026-06-10T00:00:00Z"


def reported(*strategies: dict[str, Any]) -> list[dict[str, Any]]:
    """list/post data: the caller's fields plus what the EMS fills in."""
    return [{**s, "created_at": NOW, "updated_at": NOW, "updated_by": "mqtt"} for s in strategies]


BASE = desired.from_reported(reported({**CREATE_DATA, "id": 1}))


@pytest.mark.parametrize(
    ("op", "request_body", "reply", "expected"),
    [
        ("create", {**CREATE_DATA, "device_type": 3}, {"id": 5}, {1: 10, 5: 10}),
        ("update", {"id": 1, "streaming_condition": 30}, None, {1: 30}),
        ("delete", {"id": 1}, None, {}),
        (
            "update_all",
            [{"id": 1, "streaming_condition": 40}, {**CREATE_DATA, "device_type": 4}],
            [{"id": 1}, {"id": 8}],
            {1: 40, 8: 10},
        ),
    ],
    ids=["create-takes-the-ems-id", "update-merges", "delete", "update_all-new-ids-from-reply"],
)
def test_apply_success(op: str, request_body: Any, reply: Any, expected: dict[int, int]) -> None:
    state = desired.apply_success(BASE, op, request_body, reply, NOW)
    assert {i: s.streaming_condition for i, s in state.items()} == expected


def test_apply_an_update_of_an_unknown_strategy_is_refused() -> None:
    """The base lacks the strategy: a ValueError, so the caller keeps the old desired set."""
    with pytest.raises(ValueError, match="strategy 9 not found"):
        desired.apply_success(BASE, "update", {"id": 9, "streaming_condition": 1}, None, NOW)


@pytest.mark.parametrize(
    ("now_reported", "missing", "extra", "changed"),
    [
        (reported({**CREATE_DATA, "id": 1}), (), (), None),
        (
            reported({**CREATE_DATA, "id": 1, "streaming_condition": 99}),
            (),
            (),
            {1: ("streaming_condition",)},
        ),
        (reported(), (1,), (), None),
        (
            reported({**CREATE_DATA, "id": 1}, {**CREATE_DATA, "id": 2, "device_type": 3}),
            (),
            (2,),
            None,
        ),
    ],
    ids=["in-step", "changed-field", "deleted-on-ems", "added-on-ems"],
)
def test_drift(
    now_reported: Any, missing: tuple[int, ...], extra: tuple[int, ...], changed: Any
) -> None:
    found = desired.drift(BASE, desired.from_reported(now_reported))
    assert (found.missing, found.extra, found.changed) == (missing, extra, changed)
    assert found.any is bool(missing or extra or changed)


def test_times_and_author_are_not_drift() -> None:
    later = [
        {**s, "updated_at": "2027-01-01T00:00:00Z", "updated_by": "someone"}
        for s in reported({**CREATE_DATA, "id": 1})
    ]
    assert not desired.drift(BASE, desired.from_reported(later)).any


def test_reconcile_names_kept_ids_and_recreates_the_lost_by_meter() -> None:
    wanted = desired.apply_success(
        BASE, "create", {**CREATE_DATA, "device_type": 3}, {"id": 2}, NOW
    )
    items = desired.reconcile_items(
        wanted, desired.from_reported(reported({**CREATE_DATA, "id": 1}))
    )
    assert [(i.id, i.device_type, i.ele_meter_id) for i in items] == [(1, 2, 9), (None, 3, 9)]
    assert items[0].over_demand_condition == CREATE_DATA["over_demand_condition"]
