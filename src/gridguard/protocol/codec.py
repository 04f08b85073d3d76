"""Bytes <-> validated messages.

Decoding order for a command: size limit (D6, refused unparsed) -> lenient JSON (D4: trailing
commas accepted, anything else that is not JSON is a 400 with line and column) -> the model,
whose failures become one readable message naming every field path and rule (D3) -> the
envelope checks against the topic (D2: ``type`` must match the op, ``device_uid`` must be ours).
"""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from gridguard.protocol.errors import (
    InvalidMessageError,
    JsonSyntaxError,
    PayloadTooLargeError,
    ProtocolError,
)
from gridguard.protocol.models import COMMAND_MODELS, Envelope, message_type

DEFAULT_MAX_PAYLOAD_BYTES = 256 * 1024
M = TypeVar("M", bound=BaseModel)

_MID_RE = re.compile(rb'"mid"\s*:\s*"([^"\\]{1,100})"')
_TRACE_RE = re.compile(rb'"trace_id"\s*:\s*"([^"\\]{1,200})"')


def _blank_trailing_commas(text: str) -> str:  # noqa: C901 - one-pass scanner
    """Replace commas that stand before ``}`` or ``]`` with spaces (positions kept for errors)."""
    out = list(text)
    in_string = escaped = False
    last_comma = -1
    for index, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
            continue
        if char == '"':
            in_string, last_comma = True, -1
        elif char == ",":
            last_comma = index
        elif char in "}]":
            if last_comma >= 0:
                out[last_comma] = " "
            last_comma = -1
        elif not char.isspace():
            last_comma = -1
    return "".join(out)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def loads_lenient(payload: bytes) -> Any:
    """Parse JSON allowing trailing commas (D4); raise JsonSyntaxError with line and column."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JsonSyntaxError(f"payload is not UTF-8 text (byte {exc.start})") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)  # fast path: strict JSON
    except json.JSONDecodeError:
        pass
    except ValueError as exc:
        raise JsonSyntaxError(f"invalid JSON: {exc}") from None
    try:
        return json.loads(_blank_trailing_commas(text), parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise JsonSyntaxError(
            f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except ValueError as exc:
        raise JsonSyntaxError(f"invalid JSON: {exc}") from None


def format_loc(loc: tuple[int | str, ...]) -> str:
    """``('data', 'over_demand_condition', 3)`` -> ``data.over_demand_condition[3]``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out or "(message)"


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number")


def describe_errors(exc: ValidationError, prefix: tuple[int | str, ...] = ()) -> str:
    """One readable line per broken rule, ``path: rule``, joined by ``; `` (D3)."""
    parts: list[str] = []
    for err in exc.errors():
        where = format_loc(prefix + tuple(err["loc"]))
        kind = err["type"]
        if kind == "missing":
            rule = "required field missing"
        elif kind in {"model_type", "model_attributes_type", "dict_type"}:
            rule = f"must be a JSON object, got {_kind(err['input'])}"
        elif kind == "list_type":
            rule = f"must be a list, got {_kind(err['input'])}"
        elif kind in {"string_type", "str_type"}:
            rule = f"must be a string, got {_kind(err['input'])}"
        else:
            rule = err["msg"]
        parts.append(f"{where}: {rule}")
    return "; ".join(dict.fromkeys(parts))


def _recover_ids(payload: bytes) -> tuple[str | None, str | None]:
    mid = _MID_RE.search(payload)
    trace = _TRACE_RE.search(payload)
    return (
        mid.group(1).decode("utf-8", "replace") if mid else None,
        trace.group(1).decode("utf-8", "replace") if trace else None,
    )


def _type_mismatch(raw_type: Any, op: str) -> str | None:
    """D2: why ``type`` does not belong on op's topic (checked before the data, so a type of
    another op is named as such, not reported as that op's missing fields); None if it does."""
    expected = message_type(op)
    if not isinstance(raw_type, str) or raw_type == expected:
        return None
    other = raw_type.removeprefix("streaming_overdemand_")
    if other != raw_type and other in COMMAND_MODELS:
        return f"type: {raw_type!r} is for the {other} topic, not {op}"
    return f"type: expected {expected!r} on the {op} topic, got {raw_type!r}"


def parse_model(
    model: type[M],
    payload: bytes,
    *,
    max_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    op: str | None = None,
) -> M:
    """Decode any message (result, list/post, command) into ``model``; with ``op``, its
    ``type`` must be that op's (D2)."""
    mid, trace_id = _recover_ids(payload[:4096])
    if len(payload) > max_bytes:
        raise PayloadTooLargeError(
            f"payload is {len(payload)} bytes, over the {max_bytes}-byte limit",
            mid=mid,
            trace_id=trace_id,
        )
    try:
        raw = loads_lenient(payload)
    except JsonSyntaxError as exc:
        raise JsonSyntaxError(str(exc), mid=mid, trace_id=trace_id) from None
    if not isinstance(raw, dict):
        raise InvalidMessageError(f"(message): must be a JSON object, got {_kind(raw)}")
    mid = raw["mid"] if isinstance(raw.get("mid"), str) else None
    trace_id = raw["trace_id"] if isinstance(raw.get("trace_id"), str) else None
    mismatch = _type_mismatch(raw.get("type"), op) if op is not None else None
    if mismatch is not None:
        raise InvalidMessageError(mismatch, mid=mid, trace_id=trace_id)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise InvalidMessageError(describe_errors(exc), mid=mid, trace_id=trace_id) from None


def decode_command(
    op: str,
    payload: bytes,
    *,
    device_uid: str | None = None,
    max_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
) -> Envelope:
    """Decode the command received on ``{op}/command``; raise ProtocolError (-> 400)."""
    model = COMMAND_MODELS.get(op)
    if model is None:
        raise ProtocolError(f"op {op!r} takes no commands")
    message = parse_model(model, payload, max_bytes=max_bytes, op=op)
    if device_uid is not None and message.device_uid != device_uid:
        raise InvalidMessageError(
            f"device_uid: {message.device_uid!r} is not this EMS ({device_uid!r})",
            mid=message.mid,
            trace_id=message.trace_id,
        )
    return message


def encode(message: BaseModel) -> bytes:
    """Serialise a message for the wire (field names, no nulls for absent options)."""
    return message.model_dump_json(exclude_none=True).encode("utf-8")


def json_bytes(document: Any) -> bytes:
    """Compact UTF-8 JSON for a plain document (dicts and lists)."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
