"""Each validation rule, as a table: the input broken one way, and the exact msg (D3)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from gridguard.protocol import codec
from gridguard.protocol.errors import InvalidMessageError, JsonSyntaxError, PayloadTooLargeError

pytestmark = pytest.mark.unit

MID = "3e681859-6917-4b9a-9afd-3f162cd185bd"
BASE_DATA: dict[str, Any] = {
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


def command(op: str, data: Any, **envelope: Any) -> bytes:
    message = {
        "mid": MID,
        "type": f"streaming_overdemand_{op}",
        "device_uid": "gg-1",
        "timestamp": 1695265371000,
        "data": data,
    }
    message.update(envelope)
    return json.dumps({k: v for k, v in message.items() if v is not ...}).encode()


def with_data(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE_DATA)
    for key, value in changes.items():
        if value is ...:
            data.pop(key)
        else:
            data[key] = value
    return data


CASES: list[tuple[str, str, bytes, str]] = [
    # (id, op, payload, exact msg)  -- why in the id
    (
        "status-out-of-range",
        "create",
        command("create", with_data(streaming_status=3)),
        "data.streaming_status: must be 1 (enabled) or 2 (disabled), got 3",
    ),
    (
        "status-zero",
        "create",
        command("create", with_data(over_demand_status=0)),
        "data.over_demand_status: must be 1 (enabled) or 2 (disabled), got 0",
    ),
    (
        "status-bool-is-not-a-number",
        "create",
        command("create", with_data(streaming_status=True)),
        "data.streaming_status: must be 1 (enabled) or 2 (disabled), got true",
    ),
    (
        "status-string",
        "create",
        command("create", with_data(streaming_status="1")),
        "data.streaming_status: must be 1 (enabled) or 2 (disabled), got '1'",
    ),
    (
        "phase-status-null",
        "create",
        command("create", with_data(individual_phase_streaming_status=None)),
        "data.individual_phase_streaming_status: must be 1 (enabled) or 2 (disabled), got null",
    ),
    (
        "condition-negative",
        "create",
        command("create", with_data(streaming_condition=-5)),
        "data.streaming_condition: must be a whole number of kW in 0..65535, got -5",
    ),
    (
        "condition-fractional",
        "create",
        command("create", with_data(streaming_condition=1.5)),
        "data.streaming_condition: must be a whole number of kW in 0..65535, got 1.5",
    ),
    (
        "phase-condition-string",
        "create",
        command("create", with_data(individual_phase_streaming_condition="100")),
        (
            "data.individual_phase_streaming_condition: "
            "must be a whole number of kW in 0..65535, got '100'"
        ),
    ),
    (
        "monthly-13-values",
        "create",
        command("create", with_data(over_demand_condition=[1] * 13)),
        "data.over_demand_condition: expected 12 monthly values (Jan..Dec), got 13",
    ),
    (
        "monthly-empty",
        "create",
        command("create", with_data(over_demand_condition=[])),
        "data.over_demand_condition: expected 12 monthly values (Jan..Dec), got 0",
    ),
    (
        "monthly-not-a-list",
        "create",
        command("create", with_data(over_demand_condition=2000)),
        "data.over_demand_condition: must be a list of 12 monthly kW values (Jan..Dec), got 2000",
    ),
    (
        "monthly-negative-item",
        "create",
        command("create", with_data(over_demand_condition=[2000] * 3 + [-1] + [2000] * 8)),
        "data.over_demand_condition[3]: must be a whole number of kW in 0..65535, got -1",
    ),
    (
        "percentage-zero",
        "create",
        command("create", with_data(dynamic_demand_percentage=0)),
        "data.dynamic_demand_percentage: must be a number in (0, 100], got 0",
    ),
    (
        "percentage-over-100",
        "create",
        command("create", with_data(dynamic_demand_percentage=100.5)),
        "data.dynamic_demand_percentage: must be a number in (0, 100], got 100.5",
    ),
    (
        "percentage-missing",
        "create",
        command("create", with_data(dynamic_demand_percentage=...)),
        "data.dynamic_demand_percentage: required field missing",
    ),
    (
        "meter-missing",
        "create",
        command("create", with_data(ele_meter_id=...)),
        "data.ele_meter_id: required field missing",
    ),
    (
        "meter-zero",
        "create",
        command("create", with_data(ele_meter_id=0)),
        "data.ele_meter_id: must be a positive integer id below 2^53, got 0",
    ),
    (
        "device-type-5",
        "create",
        command("create", with_data(device_type=5)),
        "data.device_type: must be 2 (storage), 3 (PV) or 4 (charging pile), got 5",
    ),
    (
        "two-rules-both-named",
        "create",
        command("create", with_data(streaming_status=9, dynamic_demand_percentage=-1)),
        (
            "data.streaming_status: must be 1 (enabled) or 2 (disabled), got 9; "
            "data.dynamic_demand_percentage: must be a number in (0, 100], got -1"
        ),
    ),
    (
        "data-not-object",
        "create",
        command("create", [1, 2]),
        "data: must be a JSON object, got a list",
    ),
    ("data-missing", "create", command("create", ...), "data: required field missing"),
    (
        "update-without-id",
        "update",
        command("update", {"streaming_status": 1}),
        "data.id: required field missing",
    ),
    (
        "update-id-negative",
        "update",
        command("update", {"id": -2}),
        "data.id: must be a positive integer id below 2^53, got -2",
    ),
    (
        "delete-id-string",
        "delete",
        command("delete", {"id": "1"}),
        "data.id: must be a positive integer id below 2^53, got '1'",
    ),
    (
        "update-all-not-list",
        "update_all",
        command("update_all", BASE_DATA),
        "data: must be a list, got an object",
    ),
    (
        "update-all-item-index",
        "update_all",
        command("update_all", [BASE_DATA, with_data(streaming_status=7)]),
        "data[1].streaming_status: must be 1 (enabled) or 2 (disabled), got 7",
    ),
    ("mid-not-uuid", "sync", command("sync", None, mid="abc"), "mid: must be a UUID, got 'abc'"),
    (
        "timestamp-zero",
        "sync",
        command("sync", None, timestamp=0),
        "timestamp: must be a positive integer of milliseconds since the epoch, got 0",
    ),
    (
        "device-uid-missing",
        "sync",
        command("sync", None, device_uid=...),
        "device_uid: required field missing",
    ),
    (
        "type-of-other-op",
        "create",
        command("create", BASE_DATA, type="streaming_overdemand_update"),
        "type: 'streaming_overdemand_update' is for the update topic, not create",
    ),
    (
        "delete-sent-on-create",  # why: named as the wrong topic, not as six missing fields
        "create",
        command("create", {"id": 1}, type="streaming_overdemand_delete"),
        "type: 'streaming_overdemand_delete' is for the delete topic, not create",
    ),
    (
        "type-of-no-op",
        "sync",
        command("sync", None, type="streaming_overdemand_reboot"),
        (
            "type: expected 'streaming_overdemand_sync' on the sync topic, "
            "got 'streaming_overdemand_reboot'"
        ),
    ),
    (
        "device-uid-of-other-ems",
        "sync",
        command("sync", None, device_uid="other"),
        "device_uid: 'other' is not this EMS ('gg-1')",
    ),
    ("top-level-array", "sync", b"[]", "(message): must be a JSON object, got a list"),
]


@pytest.mark.parametrize(
    ("op", "payload", "msg"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_rule_message(op: str, payload: bytes, msg: str) -> None:
    """The 400 msg names the field path and the rule, exactly."""
    with pytest.raises(InvalidMessageError) as caught:
        codec.decode_command(op, payload, device_uid="gg-1")
    assert str(caught.value) == msg


def test_invalid_message_keeps_mid_for_the_reply() -> None:
    """D3: the 400 can still name the command's mid."""
    with pytest.raises(InvalidMessageError) as caught:
        codec.decode_command("create", command("create", with_data(streaming_status=3)))
    assert caught.value.mid == MID


@pytest.mark.parametrize(
    ("payload", "msg"),
    [
        (b'{"mid": "x",\n "a": }', "invalid JSON at line 2 column 7: Expecting value"),
        (
            b"{'mid': 1}",
            "invalid JSON at line 1 column 2: Expecting property name enclosed in double quotes",
        ),
        (b'{"a": NaN}', "invalid JSON at line 1 column 7: NaN is not a JSON number"),
        (b"\xff\xfe", "payload is not UTF-8 text (byte 0)"),
        (b"", "invalid JSON at line 1 column 1: Expecting value"),
    ],
    ids=["missing-value", "single-quotes", "nan", "not-utf8", "empty"],
)
def test_json_syntax_errors_give_line_and_column(payload: bytes, msg: str) -> None:
    """D4: anything that is not JSON (trailing commas aside) is refused with line and column."""
    with pytest.raises(JsonSyntaxError) as caught:
        codec.decode_command("sync", payload)
    assert str(caught.value) == msg


def test_unparseable_json_still_yields_mid() -> None:
    """D3: the mid is recovered from broken JSON for the reply when it can be found."""
    payload = b'{"mid": "3e681859-6917-4b9a-9afd-3f162cd185bd", "data": {'
    with pytest.raises(JsonSyntaxError) as caught:
        codec.decode_command("create", payload)
    assert caught.value.mid == MID


def test_trailing_commas_accepted_but_commas_in_strings_kept() -> None:
    """D4: trailing commas are blanked outside strings only."""
    payload = b'{"a": [1, 2,], "b": "x,]", "c": {"d": 1,},}'
    assert codec.loads_lenient(payload) == {"a": [1, 2], "b": "x,]", "c": {"d": 1}}


def test_oversized_payload_refused_unparsed() -> None:
    """D6: over the limit is a 400 without parsing (even if it is not JSON at all)."""
    payload = b'{"mid": "3e681859-6917-4b9a-9afd-3f162cd185bd"' + b" " * 300_000
    with pytest.raises(PayloadTooLargeError) as caught:
        codec.decode_command("sync", payload)
    assert str(caught.value) == "payload is 300046 bytes, over the 262144-byte limit"
    assert caught.value.mid == MID


def test_size_limit_is_configurable() -> None:
    """D6: the limit is a parameter."""
    with pytest.raises(PayloadTooLargeError):
        codec.decode_command("sync", command("sync", None), max_bytes=50)


def test_unknown_fields_ignored() -> None:
    """Forward compatibility: unknown keys are ignored, not refused."""
    message = codec.decode_command("create", command("create", with_data(future_field=1)))
    assert message.mid == MID
