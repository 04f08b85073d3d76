"""An in-memory :class:`~gridguard.store.base.StrategyStore` for tests, the simulator and demos.

It keeps the SQL store's contract (the same test-suite runs on both): one commit is all or
nothing, at most one strategy per (meter, type) (D7), ids never reused, replies pruned to the
newest ``keep_replies`` (D5), documents stored as JSON (a copy: later changes by the caller
don't reach the store). The data live in a :class:`MemoryDatabase`; hand the same one to a new
store to simulate a restart. ``fail_next_commit`` makes the next commit fail like a database
that went away, to test the 500 reply (D3).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gridguard.store.base import (
    DEFAULT_KEEP_REPLIES,
    CommitEntry,
    StoredReply,
    StoredStrategy,
    StoreError,
)
from gridguard.store.plan import FIRST_STRATEGY_ID, NetEffect, net_effect


@dataclass(slots=True)
class MemoryDatabase:
    """What survives a "restart" of :class:`MemoryStrategyStore`: its tables."""

    strategies: dict[int, StoredStrategy] = field(default_factory=dict)
    next_id: int = FIRST_STRATEGY_ID
    replies: OrderedDict[str, StoredReply] = field(default_factory=OrderedDict)
    """Oldest first, as stored."""
    state: dict[str, str] = field(default_factory=dict)
    """JSON text per key."""


class MemoryStrategyStore:
    """The strategy store in a :class:`MemoryDatabase` (a fresh one unless given)."""

    def __init__(
        self,
        database: MemoryDatabase | None = None,
        *,
        keep_replies: int = DEFAULT_KEEP_REPLIES,
    ) -> None:
        if keep_replies < 1:
            raise ValueError(f"keep_replies must be >= 1, got {keep_replies}")
        self.database = database if database is not None else MemoryDatabase()
        self.fail_next_commit = False
        """Set to make the next :meth:`commit` raise StoreError and change nothing."""
        self._keep_replies = keep_replies
        self._open = False

    async def open(self) -> None:
        self._open = True

    async def close(self) -> None:
        self._open = False

    async def list_strategies(self) -> list[StoredStrategy]:
        db = self._require_open()
        return [_copy(db.strategies[i]) for i in sorted(db.strategies)]

    async def next_id(self) -> int:
        return self._require_open().next_id

    async def get_reply(self, key: str) -> StoredReply | None:
        return self._require_open().replies.get(key)

    async def reply_keys(self) -> list[str]:
        return list(self._require_open().replies)

    async def get_replies(self, keys: Sequence[str]) -> dict[str, StoredReply]:
        stored = self._require_open().replies
        return {key: stored[key] for key in keys if key in stored}

    async def commit(
        self,
        *,
        reply: StoredReply,
        upserts: Sequence[StoredStrategy] = (),
        deletes: Sequence[int] = (),
        next_id: int | None = None,
    ) -> None:
        await self.commit_batch([CommitEntry(reply, upserts, deletes, next_id)])

    async def commit_batch(self, entries: Sequence[CommitEntry]) -> None:
        db = self._require_open()
        if self.fail_next_commit:
            self.fail_next_commit = False
            raise StoreError("store: cannot commit (memory): simulated failure")
        if not entries:
            return
        effect = net_effect(entries)
        if stored := [r.key for r in effect.replies if r.key in db.replies]:
            raise StoreError(f"store: cannot commit (memory): replies {stored} already stored")
        strategies = _apply(db.strategies, effect)
        # Nothing above touched the database: from here on, nothing can fail.
        db.strategies = strategies
        db.next_id = max(db.next_id, effect.id_floor)
        for reply in effect.replies:
            db.replies[reply.key] = reply
        while len(db.replies) > self._keep_replies:
            db.replies.popitem(last=False)

    async def load_state(self, key: str) -> dict[str, Any] | None:
        text = self._require_open().state.get(key)
        if text is None:
            return None
        value: dict[str, Any] = json.loads(text)
        return value

    async def save_state(self, key: str, value: dict[str, Any]) -> None:
        await self.save_states({key: value})

    async def save_states(self, states: Mapping[str, dict[str, Any]]) -> None:
        db = self._require_open()
        texts = {key: _json_text(value, f"state {key!r}") for key, value in states.items()}
        db.state.update(texts)  # all or nothing: every document encoded first

    def _require_open(self) -> MemoryDatabase:
        if not self._open:
            raise StoreError("store memory:// is not open")
        return self.database


def _apply(current: dict[int, StoredStrategy], effect: NetEffect) -> dict[int, StoredStrategy]:
    """The strategy table after a commit, or StoreError where the SQL constraints would fail."""
    gone = set(effect.replaced)
    table = {i: s for i, s in current.items() if i not in gone}
    table.update((s.id, _copy(s)) for s in effect.rows)
    keys = [(s.ele_meter_id, s.device_type) for s in table.values()]
    if len(set(keys)) != len(keys):
        raise StoreError(
            "store: cannot commit (memory): unique (ele_meter_id, device_type) violated"
        )
    return table


def _copy(strategy: StoredStrategy) -> StoredStrategy:
    """A copy whose document went through JSON, like a row of the SQL store."""
    text = _json_text(strategy.document, f"strategy {strategy.id}")
    return StoredStrategy(
        id=strategy.id,
        ele_meter_id=strategy.ele_meter_id,
        device_type=strategy.device_type,
        document=json.loads(text),
    )


def _json_text(value: dict[str, Any], what: str) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"store: cannot store {what} (memory): {exc}") from exc
