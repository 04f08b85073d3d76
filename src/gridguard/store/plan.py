"""What a batch of answered commands does to the tables, as pure data (both stores use it).

Entries apply in order; their net effect is what gets written: every touched id is deleted once
and the last version of each surviving strategy inserted once, so a group commit costs the same
few statements as a single command (and keys may move between strategies within it, D9/D11).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gridguard.store.base import CommitEntry, StoredReply, StoredStrategy, StoreError

FIRST_STRATEGY_ID = 1
"""The id the first strategy of an empty store gets (ids are positive integers, D7)."""


@dataclass(frozen=True, slots=True)
class NetEffect:
    """The writes of a batch: ids to remove, rows to insert, the id floor, replies in order."""

    replaced: list[int]
    """Every id upserted or deleted by any entry (each once)."""
    rows: list[StoredStrategy]
    """The final version of every upserted strategy that no later entry deleted, in id order."""
    id_floor: int
    replies: list[StoredReply]


def id_floor(upserts: Sequence[StoredStrategy], next_id: int | None) -> int:
    """The least the id counter may hold after a commit: above every id ever stored (D7).

    The counter only moves up: to ``next_id`` when given, and past every upserted id even when
    the caller forgot to raise it.
    """
    return max([next_id or 0, *(s.id + 1 for s in upserts)])


def net_effect(entries: Sequence[CommitEntry]) -> NetEffect:
    """The net writes of ``entries`` (at least one) applied in order.

    StoreError if an entry upserts an id twice or two entries carry the same mid: the database
    would refuse both.
    """
    final: dict[int, StoredStrategy | None] = {}
    for entry in entries:
        ids = [s.id for s in entry.upserts]
        if len(set(ids)) != len(ids):
            raise StoreError(f"store: cannot commit: an id is upserted twice in {ids}")
        final.update(dict.fromkeys(entry.deletes))
        final.update((s.id, s) for s in entry.upserts)
    mids = [e.reply.key for e in entries]
    if len(set(mids)) != len(mids):
        raise StoreError(f"store: cannot commit: a mid appears twice in one batch: {mids}")
    return NetEffect(
        replaced=list(final),
        rows=[s for _, s in sorted(final.items()) if s is not None],
        id_floor=max(id_floor(e.upserts, e.next_id) for e in entries),
        replies=[e.reply for e in entries],
    )
