"""Hostile command payloads for the fuzz lane (hypothesis strategies).

Each payload comes with the mid planted in it when the agent can recover it (then exactly one
reply must name it) or None. Most payloads start from a valid command and break one thing:
a field replaced by a hostile value (huge or non-finite numbers, unpaired surrogates, deep
nesting, wrong types, empty or over-long strings), the envelope broken, the text cut short or
its bytes damaged; the rest are arbitrary bytes.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from gridguard.protocol.topics import COMMAND_OPS

TS = 1_717_664_360_213
VALID_DATA: dict[str, Any] = {
    "create": {
        "ele_meter_id": 9,
        "streaming_status": 1,
        "streaming_condition": 100,
        "individual_phase_streaming_status": 2,
        "over_demand_status": 1,
        "over_demand_condition": [2000] * 12,
        "dynamic_demand_percentage": 80,
    },
    "update": {"id": 1, "streaming_condition": 50},
    "delete": {"id": 1},
    "update_all": [{"ele_meter_id": 10, "streaming_status": 1, "over_demand_status": 2}],
    "sync": None,
}


@dataclass(frozen=True, slots=True)
class Hostile:
    op: str
    payload: bytes
    mid: str | None
    """The mid the agent can recover from the payload (one reply must name it), if any."""


class Raw:
    """A JSON fragment spliced into the text as is (NaN, 310-digit numbers, deep nesting)."""

    def __init__(self, text: str) -> None:
        self.text = text


SURROGATES = st.sampled_from(["\\ud800", "\\udfff", "a\\udc00b", "\\ud83d"])
RAW_VALUES = st.one_of(
    st.sampled_from(
        ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "9" * 310, "-" + "9" * 310]
    ),
    st.integers(min_value=1, max_value=40).map(lambda n: "1" + "0" * n),
    st.integers(min_value=33, max_value=2000).map(lambda n: "[" * n + "]" * n),
    st.integers(min_value=33, max_value=200).map(lambda n: '{"a":' * n + "1" + "}" * n),
    SURROGATES.map(lambda s: f'"{s}"'),
)
PLAIN_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=50),
    st.text(min_size=0, max_size=0),
    st.lists(st.integers(min_value=-(2**40), max_value=2**40), max_size=14),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)
HOSTILE_VALUES = st.one_of(RAW_VALUES.map(Raw), PLAIN_VALUES)


def render(value: Any) -> str:
    """JSON text for ``value``, with :class:`Raw` fragments spliced in verbatim."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {render(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(render(v) for v in value) + "]"
    return json.dumps(value)


def _with_field(data: Any, key: str | int, value: Any) -> Any:
    if isinstance(data, list) and data and isinstance(data[0], dict):
        return [{**data[0], key: value}, *data[1:]]
    if isinstance(data, dict):
        return {**data, key: value}
    return value


DATA_KEYS = st.sampled_from(
    [
        "ele_meter_id",
        "device_type",
        "streaming_status",
        "streaming_condition",
        "individual_phase_streaming_condition",
        "over_demand_condition",
        "dynamic_demand_percentage",
        "updated_by",
        "id",
        "data",
    ]
)
ENVELOPE_KEYS = st.sampled_from(["type", "device_uid", "timestamp", "trace_id", "mid"])


@st.composite
def mutated(draw: st.DrawFn, device: str) -> Hostile:
    op = draw(st.sampled_from(COMMAND_OPS))
    mid = str(uuid.uuid4())
    envelope: dict[str, Any] = {
        "mid": mid,
        "type": f"streaming_overdemand_{op}",
        "device_uid": device,
        "timestamp": TS,
        "data": VALID_DATA[op],
    }
    where = draw(st.sampled_from(["data", "data", "data", "envelope", "whole-data"]))
    value = draw(HOSTILE_VALUES)
    if where == "envelope":
        key = draw(ENVELOPE_KEYS)
        envelope[key] = value
        if key == "mid":
            mid = None  # type: ignore[assignment]
    elif where == "whole-data":
        envelope["data"] = value
    else:
        envelope["data"] = _with_field(envelope["data"], draw(DATA_KEYS), value)
    text = render(envelope).encode("utf-8")
    damage = draw(st.sampled_from(["none", "none", "none", "cut", "bytes"]))
    if damage == "cut":
        text = text[: draw(st.integers(min_value=0, max_value=len(text)))]
    elif damage == "bytes":
        at = draw(st.integers(min_value=0, max_value=len(text)))
        text = text[:at] + draw(st.binary(min_size=1, max_size=4)) + text[at:]
    return Hostile(op, text, mid if mid and _recoverable(text, mid) else None)


def _recoverable(payload: bytes, mid: str) -> bool:
    pattern = rb'^\{"mid": "' + re.escape(mid.encode()) + rb'"'
    return re.match(pattern, payload) is not None


def hostile(device: str) -> st.SearchStrategy[Hostile]:
    garbage = st.builds(
        Hostile,
        st.sampled_from(COMMAND_OPS),
        st.binary(max_size=300),
        st.none(),
    )
    return st.one_of(mutated(device), mutated(device), mutated(device), garbage)
