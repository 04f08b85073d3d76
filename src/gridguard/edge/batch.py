"""The pieces of handling one batch of commands: each command decoded, the batch's working
state, what handling a command produced, and the idempotency key and fingerprint (D5)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from gridguard.edge.stored import Quarantined
from gridguard.protocol.errors import ProtocolError
from gridguard.protocol.models import Envelope
from gridguard.store.base import CommitEntry, StoredReply
from gridguard.strategy import rules
from gridguard.strategy.model import Strategy


@dataclass(frozen=True, slots=True)
class Handled:
    """What handling one command produced."""

    op: str
    reply: bytes
    code: int
    changed: bool
    mid: str | None
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class Decoded:
    command: Envelope | None
    error: ProtocolError | None
    mid: str | None
    trace_id: str | None
    digest: str | None = None
    """What the command asks for (its ``data``), to tell a retry from a reused mid."""
    payload: bytes = b""
    failure: Exception | None = None


@dataclass(slots=True)
class Batch:
    """Working state of one batch: strategies, quarantined ones and id counter as the
    commands change them."""

    strategies: dict[int, Strategy]
    next_id: int
    quarantined: dict[int, Quarantined] = field(default_factory=dict)
    stored: dict[str, StoredReply] = field(default_factory=dict)
    entries: list[CommitEntry] = field(default_factory=list)
    fresh: dict[str, StoredReply] = field(default_factory=dict)

    def replayable(self, key: str) -> StoredReply | None:
        return self.fresh.get(key) or self.stored.get(key)

    def add(self, entry: CommitEntry, outcome: rules.Outcome | None) -> None:
        self.entries.append(entry)
        self.fresh[entry.reply.key] = entry.reply
        if outcome is None:
            return
        for strategy in outcome.upserts:
            self.strategies[strategy.id] = strategy
        for strategy_id in outcome.deletes:
            self.strategies.pop(strategy_id, None)
            self.quarantined.pop(strategy_id, None)
        if outcome.next_id is not None:
            self.next_id = outcome.next_id


def reply_key(op: str, mid: str) -> str:
    """The idempotency key of a command (D5): its op and mid.

    A redelivery arrives on the same command topic with the same mid. The spec's own examples
    reuse one mid for create, update, delete and update_all, and each must be answered on its
    own, so the key includes the op.
    """
    return f"{op}/{mid}"


def command_digest(command: Envelope) -> str:
    """A fingerprint of a command's ``data`` (not its envelope: a retry may re-stamp it)."""
    data = getattr(command, "data", None)
    if isinstance(data, BaseModel):
        dumped: Any = data.model_dump(exclude_unset=True)
    elif isinstance(data, list):
        dumped = [d.model_dump(exclude_unset=True) for d in data]
    else:
        dumped = None
    text = json.dumps(dumped, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def payload_key(op: str, payload: bytes) -> str:
    return f"{op}#{hashlib.sha256(payload).hexdigest()[:32]}"


def replayed(op: str, previous: StoredReply, mid: str) -> Handled:
    code = reply_code(previous.payload)
    return Handled(op=op, reply=previous.payload, code=code, changed=False, mid=mid, duplicate=True)


def reply_code(payload: bytes) -> int:
    try:
        value = json.loads(payload).get("code", 200)
    except (ValueError, AttributeError):
        return 200
    return int(value) if isinstance(value, int) else 200
