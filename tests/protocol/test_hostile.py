"""Hostile payloads the decoder must refuse with a 400 naming the field, never crash on."""

from __future__ import annotations

import json

import pytest

from gridguard.protocol import codec
from gridguard.protocol.errors import JsonSyntaxError, ProtocolError
from tests.protocol.test_validation import MID, command, with_data

pytestmark = pytest.mark.unit

HUGE = "9" * 310
"""A JSON number with 310 digits: an int to Python, an overflow to float()."""


def raw_command(op: str, data_json: str, **envelope: str) -> bytes:
    """A command whose ``data`` (and any envelope field) is spliced in as raw JSON text."""
    fields = {
        "mid": json.dumps(MID),
        "type": json.dumps(f"streaming_overdemand_{op}"),
        "device_uid": '"gg-1"',
        "timestamp": "1695265371000",
        "data": data_json,
        **envelope,
    }
    return ("{" + ",".join(f'"{k}": {v}' for k, v in fields.items()) + "}").encode()


def create_with(field: str, value_json: str) -> bytes:
    data = json.dumps(with_data())
    data = data[:-1] + f', "{field}": {value_json}' + "}"
    return raw_command("create", data)


CASES: list[tuple[str, str, bytes, str]] = [
    # (id: why, op, payload, text the 400 must contain)
    ("deep-nesting", "sync", raw_command("sync", "[" * 1000 + "]" * 1000), "nested deeper than 32"),
    ("deep-objects", "create", raw_command("create", '{"a":' * 40 + "1" + "}" * 40), "deeper"),
    ("surrogate-mid", "sync", raw_command("sync", "null", mid='"\\ud800"'), "mid:"),
    ("surrogate-trace", "sync", raw_command("sync", "null", trace_id='"\\udfff"'), "trace_id:"),
    ("surrogate-updated-by", "create", create_with("updated_by", '"a\\ud800b"'), "updated_by"),
    ("huge-percentage", "create", create_with("dynamic_demand_percentage", HUGE), "percentage"),
    ("huge-condition", "create", create_with("streaming_condition", HUGE), "streaming_condition"),
    ("kw-above-65535", "create", create_with("streaming_condition", "65536"), "65535"),
    (
        "huge-month",
        "create",
        create_with("over_demand_condition", "[" + ",".join([HUGE] * 12) + "]"),
        "over_demand_condition[0]",
    ),
    ("huge-meter-id", "create", create_with("ele_meter_id", HUGE), "ele_meter_id"),
    ("huge-timestamp", "sync", raw_command("sync", "null", timestamp=HUGE), "timestamp"),
    ("float-overflow", "create", create_with("dynamic_demand_percentage", "1e400"), "percentage"),
]


@pytest.mark.parametrize(
    ("op", "payload", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_hostile_payload_is_a_protocol_error(op: str, payload: bytes, expected: str) -> None:
    """Each is refused as bad input (-> 400) with a message naming the field or the rule."""
    with pytest.raises(ProtocolError) as caught:
        codec.decode_command(op, payload, device_uid="gg-1")
    assert expected in str(caught.value)
    str(caught.value).encode("utf-8")  # the reply carrying it can always be encoded


@pytest.mark.parametrize(
    "mid",
    ['"\\ud800"', '""', '"not-a-uuid"', "12"],
    ids=["surrogate", "empty", "not-uuid", "number"],
)
def test_recovered_mid_is_only_ever_a_uuid(mid: str) -> None:
    """A 400's mid is what the reply echoes and what it is stored under: a UUID or nothing."""
    with pytest.raises(ProtocolError) as caught:
        codec.decode_command("sync", raw_command("sync", "null", mid=mid))
    assert caught.value.mid is None


@pytest.mark.parametrize(
    ("payload", "msg"),
    [
        (b'{"a": NaN}', "invalid JSON at line 1 column 7: NaN is not a JSON number"),
        (b'{"a":\n  [1, -Infinity]}', "invalid JSON at line 2 column 7: -Infinity is not a JSON"),
        (b'{"NaN": "Infinity",\n"b": Infinity}', "line 2 column 6: Infinity is not"),
        (b'{"a": [1, NaN,]}', "invalid JSON at line 1 column 11: NaN is not a JSON number"),
    ],
    ids=["nan", "minus-infinity-line-2", "names-in-strings-skipped", "nan-with-trailing-comma"],
)
def test_non_numbers_named_with_line_and_column(payload: bytes, msg: str) -> None:
    """D4: NaN and Infinity are not JSON; the 400 says where they stand."""
    with pytest.raises(JsonSyntaxError) as caught:
        codec.decode_command("sync", payload)
    assert msg in str(caught.value)


def test_deep_but_allowed_nesting_still_parses() -> None:
    """The depth limit does not refuse an ordinary update_all of many items."""
    items = [{"id": i, "streaming_status": 1} for i in range(1, 200)]
    message = codec.decode_command("update_all", command("update_all", items))
    assert message.mid == MID


def test_boundary_values_are_accepted() -> None:
    """65,535 kW and 100 % are inside the ranges."""
    data = with_data(streaming_condition=65535, dynamic_demand_percentage=100)
    message = codec.decode_command("create", command("create", data))
    assert message.data.streaming_condition == 65535  # type: ignore[attr-defined]
