"""The edge agent's persistence, behind one narrow typed interface.

What it keeps:

* strategies, each as its key columns plus the full document of caller-set fields;
* the id counter (ids are never reused, D7);
* the mid -> reply table (D5), at least the last ``keep_replies`` (default 10,000);
* small JSON state documents for the control engine (the month's demand maximum, D18).

The one write method, :meth:`StrategyStore.commit`, applies a command's changes *and* stores its
reply in a single transaction; the agent publishes the reply only after it returns, so a reply
that reached the platform is always backed by durable state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

DEFAULT_KEEP_REPLIES = 10_000


class StoreError(Exception):
    """The store cannot serve (unreachable database, corrupt file): a 500, not a 400 (D3)."""


@dataclass(frozen=True, slots=True)
class StoredStrategy:
    """One strategy row: key columns plus the JSON document of its fields."""

    id: int
    ele_meter_id: int
    device_type: int
    document: dict[str, Any] = field(default_factory=dict)
    """Every stored field of the strategy (statuses, conditions, times, updated_by)."""


@dataclass(frozen=True, slots=True)
class StoredReply:
    """The reply once sent for a command (D5), under its idempotency key.

    ``key`` is ``"{op}/{mid}"`` (the edge agent's ``reply_key``): idempotency is per (op, mid).
    The table's column keeps its first name, ``mid``.
    """

    key: str
    op: str
    payload: bytes
    digest: str | None = None
    """A fingerprint of the command's data: the same mid with other data is not a retry."""


@dataclass(frozen=True, slots=True)
class CommitEntry:
    """One answered command's writes: its reply and the strategy changes it made."""

    reply: StoredReply
    upserts: Sequence[StoredStrategy] = ()
    deletes: Sequence[int] = ()
    next_id: int | None = None


@runtime_checkable
class StrategyStore(Protocol):
    """Persistence for one EMS. One writer: callers never run two commits at once."""

    async def open(self) -> None:
        """Connect and bring the schema up to date (Alembic migrations)."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...

    async def list_strategies(self) -> list[StoredStrategy]:
        """Every strategy, in id order."""
        ...

    async def next_id(self) -> int:
        """The id the next created strategy gets (ids are never reused)."""
        ...

    async def get_reply(self, key: str) -> StoredReply | None:
        """The stored reply under ``key`` (``op/mid``), if this command was answered before."""
        ...

    async def commit(
        self,
        *,
        reply: StoredReply,
        upserts: Sequence[StoredStrategy] = (),
        deletes: Sequence[int] = (),
        next_id: int | None = None,
    ) -> None:
        """In ONE transaction: upsert/delete strategies, raise the id counter to ``next_id``,
        store the reply, and prune replies beyond the newest ``keep_replies``."""
        ...

    async def commit_batch(self, entries: Sequence[CommitEntry]) -> None:
        """Group commit: every entry's writes, in order, in ONE transaction (one fsync).

        The agent uses it for commands that arrived together, publishing their replies only
        after it returns; either all entries are stored or none is."""
        ...

    async def get_replies(self, keys: Sequence[str]) -> dict[str, StoredReply]:
        """The stored replies among ``mids`` (one query for a whole batch)."""
        ...

    async def reply_keys(self) -> list[str]:
        """The keys of every stored reply (the agent caches them to skip lookups that would
        find nothing)."""
        ...

    async def load_state(self, key: str) -> dict[str, Any] | None:
        """A JSON state document (control engine), or None."""
        ...

    async def save_state(self, key: str, value: dict[str, Any]) -> None:
        """Store a JSON state document durably (own transaction)."""
        ...

    async def save_states(self, states: Mapping[str, dict[str, Any]]) -> None:
        """Store several JSON state documents durably, all in ONE transaction (one fsync)."""
        ...
