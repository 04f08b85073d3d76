"""Bytes <-> validated messages.

Decoding order for a command: size limit (D6, refused before the bytes are even decoded) ->
UTF-8 -> nesting depth (at most MAX_DEPTH, so no parser recursion can blow up) -> lenient JSON
(D4: trailing commas accepted, anything else that is not JSON, NaN and Infinity included, is a
400 with line and column) -> valid Unicode (no unpaired surrogate escapes, which could never be
encoded into a reply or a report) -> the model,
whose failures become one readable message naming every field path and rule (D3) -> the
envelope checks against the topic (D2: ``type`` must match the op, ``device_uid`` must be ours).
"""

from __future__ import annotations

import json
import re
import uuid
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
MAX_DEPTH = 32
"""Deepest nesting of lists and objects a message may have (the protocol needs 4)."""
M = TypeVar("M", bound=BaseModel)

_STRING_RE = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKET_RE = re.compile(r"[\[\]{}]")
_CONSTANT_RE = re.compile(r"(?<![\w.])(-?Infinity|NaN)\b")
_SURROGATE_ESCAPE_RE = re.compile(rb"\\u[dD][89a-fA-F]")

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


class _NotANumberError(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise _NotANumberError(name)


_STRICT = json.JSONDecoder(parse_constant=_reject_constant)
"""One decoder for every payload (``json.loads`` with an argument builds a new one per call)."""


def _blank_strings(text: str) -> str:
    """``text`` with every string literal's inside blanked (same length: positions kept)."""
    return _STRING_RE.sub(lambda m: '"' + " " * (len(m.group()) - 2) + '"', text)


def _line_column(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def check_depth(text: str) -> None:
    """Refuse nesting deeper than MAX_DEPTH (JsonSyntaxError), before a parser sees it."""
    _check_depth(text)


def _check_depth(text: str) -> None:
    """Refuse nesting deeper than MAX_DEPTH before the (recursive) parser sees it."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return
    depth = 0
    blanked = _blank_strings(text)
    for match in _BRACKET_RE.finditer(blanked):
        depth += 1 if match.group() in "[{" else -1
        if depth > MAX_DEPTH:
            line, column = _line_column(text, match.start())
            raise JsonSyntaxError(
                f"invalid JSON at line {line} column {column}: "
                f"nested deeper than {MAX_DEPTH} levels"
            )


def _not_a_number(text: str, name: str) -> JsonSyntaxError:
    found = _CONSTANT_RE.search(_blank_strings(text))
    if found is None:
        return JsonSyntaxError(f"invalid JSON: {name} is not a JSON number")
    line, column = _line_column(text, found.start())
    return JsonSyntaxError(
        f"invalid JSON at line {line} column {column}: {found.group()} is not a JSON number"
    )


def loads_lenient(payload: bytes) -> Any:
    """Parse JSON allowing trailing commas (D4); raise JsonSyntaxError with line and column."""
    return loads_lenient_text(payload)[0]


def loads_lenient_text(payload: bytes) -> tuple[Any, str | None]:
    """:func:`loads_lenient`, and the payload's text when it was strict JSON (None when it
    needed the trailing commas blanked), for a caller that stores the text as it came."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JsonSyntaxError(f"payload is not UTF-8 text (byte {exc.start})") from None
    _check_depth(text)
    try:
        return _STRICT.decode(text), text  # fast path: strict JSON
    except json.JSONDecodeError:
        pass
    except _NotANumberError as exc:
        raise _not_a_number(text, str(exc)) from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise JsonSyntaxError(f"invalid JSON: {exc}") from None
    try:
        return _STRICT.decode(_blank_trailing_commas(text)), None
    except json.JSONDecodeError as exc:
        raise JsonSyntaxError(
            f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except _NotANumberError as exc:
        raise _not_a_number(text, str(exc)) from None
    except ValueError as exc:
        raise JsonSyntaxError(f"invalid JSON: {exc}") from None


def unencodable_path(value: Any, path: tuple[int | str, ...] = ()) -> tuple[int | str, ...] | None:
    """The path of the first key or string that is not valid Unicode (a lone surrogate)."""
    if isinstance(value, str):
        return None if value.isascii() or _encodes(value) else path
    if isinstance(value, list):
        items: Any = enumerate(value)
    elif isinstance(value, dict):
        items = value.items()
        for key in value:
            if not _encodes(key):
                return (*path, "(key)")
    else:
        return None
    for key, item in items:
        found = unencodable_path(item, (*path, key))
        if found is not None:
            return found
    return None


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_unicode(payload: bytes, raw: Any) -> None:
    """Refuse an unpaired surrogate escape (``"\\ud800"``) anywhere, naming its field."""
    if not _SURROGATE_ESCAPE_RE.search(payload):
        return
    path = unencodable_path(raw)
    if path is not None:
        mid, trace_id = _ids_from(raw)
        raise InvalidMessageError(
            f"{format_loc(path)}: must be valid Unicode text (unpaired surrogate escape)",
            mid=mid,
            trace_id=trace_id,
        )


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
    """mid and trace_id found in a payload that could not be parsed (for the 400's reply)."""
    mid = _MID_RE.search(payload)
    trace = _TRACE_RE.search(payload)
    return (
        _as_mid(mid.group(1).decode("utf-8", "replace")) if mid else None,
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


def _as_mid(value: Any) -> str | None:
    """``value`` if it is a UUID: only a UUID is echoed as ``reply`` and keys a stored reply."""
    if not isinstance(value, str):
        return None
    try:
        uuid.UUID(value)
    except ValueError:
        return None
    return value


def recover_ids(payload: bytes) -> tuple[str | None, str | None]:
    """mid (a UUID) and trace_id as far as they can be found in any payload, parsed or not."""
    return _recover_ids(payload[:4096])


def _ids_from(raw: Any) -> tuple[str | None, str | None]:
    """mid (a UUID or None) and trace_id (valid text or None) of a parsed message."""
    if not isinstance(raw, dict):
        return None, None
    trace_id = raw.get("trace_id")
    if not isinstance(trace_id, str) or not _encodes(trace_id):
        trace_id = None
    return _as_mid(raw.get("mid")), trace_id


def parse_model(
    model: type[M],
    payload: bytes,
    *,
    max_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    op: str | None = None,
) -> M:
    """Decode any message (result, list/post, command) into ``model``; with ``op``, its
    ``type`` must be that op's (D2)."""
    if len(payload) > max_bytes:
        mid, trace_id = _recover_ids(payload[:4096])
        raise PayloadTooLargeError(
            f"payload is {len(payload)} bytes, over the {max_bytes}-byte limit",
            mid=mid,
            trace_id=trace_id,
        )
    try:
        raw = loads_lenient(payload)
    except JsonSyntaxError as exc:
        mid, trace_id = _recover_ids(payload[:4096])
        raise JsonSyntaxError(str(exc), mid=mid, trace_id=trace_id) from None
    if not isinstance(raw, dict):
        raise InvalidMessageError(f"(message): must be a JSON object, got {_kind(raw)}")
    check_unicode(payload, raw)
    mid, trace_id = _ids_from(raw)
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
