"""Topics (D1): ``{prefix}/{device}/streaming_overdemand/{op}/{dir}``.

Three prefix schemes:

* ``wudun``  -> ``v1/wudun/{product_key}`` (the spec's 用户自定义MQTT)
* ``user``   -> ``v1/user/{tenant}`` (the spec's 平台默认MQTT)
* ``custom`` -> any configured prefix (the later revision's ``${自定义前缀v1}``)

``status/post`` is GridGuard's extension topic for live control state; every other op/dir
pair is the spec's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gridguard.protocol.errors import TopicError

SERVICE = "streaming_overdemand"

Op = Literal["list", "sync", "create", "update", "delete", "update_all", "status"]
Direction = Literal["post", "command", "result"]
SchemeName = Literal["wudun", "user", "custom"]

COMMAND_OPS: tuple[Op, ...] = ("sync", "create", "update", "delete", "update_all")
"""The ops the EMS receives as commands and answers on ``{op}/result`` (D1)."""

_VALID_PAIRS: frozenset[tuple[str, str]] = frozenset(
    [("list", "post"), ("status", "post")]
    + [(op, d) for op in COMMAND_OPS for d in ("command", "result")]
)
_FORBIDDEN_CHARS = ("+", "#", "\x00")


@dataclass(frozen=True, slots=True)
class TopicScheme:
    """How the topic prefix is formed; exactly one parameter matters per scheme."""

    scheme: SchemeName
    product_key: str = ""
    tenant: str = ""
    prefix: str = ""

    def __post_init__(self) -> None:
        value = self._parameter()
        name = {"wudun": "product_key", "user": "tenant", "custom": "prefix"}[self.scheme]
        if not value:
            raise TopicError(f"scheme {self.scheme!r} needs a non-empty {name}")
        if any(c in value for c in _FORBIDDEN_CHARS):
            raise TopicError(f"{name} {value!r}: must not contain MQTT wildcards + or #")
        if self.scheme != "custom" and "/" in value:
            raise TopicError(f"{name} {value!r}: must be a single topic level (no '/')")
        if value.startswith("/") or value.endswith("/") or "//" in value:
            raise TopicError(f"{name} {value!r}: must not have empty topic levels")

    def _parameter(self) -> str:
        return {"wudun": self.product_key, "user": self.tenant, "custom": self.prefix}[self.scheme]

    @property
    def prefix_path(self) -> str:
        """The topic prefix, e.g. ``v1/wudun/pk123``."""
        if self.scheme == "wudun":
            return f"v1/wudun/{self.product_key}"
        if self.scheme == "user":
            return f"v1/user/{self.tenant}"
        return self.prefix


@dataclass(frozen=True, slots=True)
class Topic:
    """One parsed or to-be-built topic."""

    scheme: TopicScheme
    device: str
    op: Op
    direction: Direction

    def __post_init__(self) -> None:
        check_device_uid(self.device)
        if (self.op, self.direction) not in _VALID_PAIRS:
            raise TopicError(f"op {self.op!r} has no {self.direction!r} topic")

    def __str__(self) -> str:
        return f"{self.scheme.prefix_path}/{self.device}/{SERVICE}/{self.op}/{self.direction}"


def check_device_uid(device: str) -> None:
    """A device UID must be one non-empty topic level without wildcards."""
    if not device:
        raise TopicError("device uid must not be empty")
    if "/" in device or any(c in device for c in _FORBIDDEN_CHARS):
        raise TopicError(f"device uid {device!r}: must not contain '/', '+' or '#'")


def build_topic(scheme: TopicScheme, device: str, op: str, direction: str) -> str:
    """Build the topic string for (scheme, device, op, dir); TopicError if the pair is not D1's."""
    return str(Topic(scheme, device, op, direction))  # type: ignore[arg-type] # checked in Topic


def _scheme_from_prefix(levels: list[str]) -> TopicScheme:
    if len(levels) == 3 and levels[0] == "v1" and levels[1] == "wudun":
        return TopicScheme("wudun", product_key=levels[2])
    if len(levels) == 3 and levels[0] == "v1" and levels[1] == "user":
        return TopicScheme("user", tenant=levels[2])
    return TopicScheme("custom", prefix="/".join(levels))


def parse_topic(topic: str) -> Topic:
    """Parse a topic back into its parts; raise TopicError saying why it does not fit."""
    shape = "{prefix}/{device}/streaming_overdemand/{op}/{dir}"
    levels = topic.split("/")
    if len(levels) < 5:
        raise TopicError(f"topic {topic!r}: expected {shape}, got only {len(levels)} levels")
    *prefix, device, service, op, direction = levels
    if service != SERVICE:
        raise TopicError(f"topic {topic!r}: expected {SERVICE!r} before the op, got {service!r}")
    if (op, direction) not in _VALID_PAIRS:
        raise TopicError(f"topic {topic!r}: {op}/{direction} is not an op/dir of {SERVICE}")
    if any(not level for level in prefix):
        raise TopicError(f"topic {topic!r}: the prefix has an empty level")
    return Topic(_scheme_from_prefix(prefix), device, op, direction)  # type: ignore[arg-type]


def command_filter(scheme: TopicScheme, device: str, op: Op) -> str:
    """The subscription for one command op of one device (no wildcards: D1)."""
    return build_topic(scheme, device, op, "command")
