"""Stored strategies read back through the protocol's own validation (nothing stored can brick
the agent): a row that fails is quarantined, reported and not enforced, and the rest serve.

What commands do to a quarantined strategy (docs/protocol.md, further rulings): list/post
leaves it out, so the platform sees its meter and type as free; a create (or update_all item,
or update) that takes that meter and type *replaces* it in the same transaction; a delete of
its id removes it; an update naming its id is a 400 saying it is quarantined and why (its
stored fields are what broke a rule, so there is nothing valid to merge into).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from pydantic import ValidationError

from gridguard.protocol.codec import describe_errors, format_loc, unencodable_path
from gridguard.protocol.models import (
    DeleteCommand,
    Envelope,
    StreamingOverDemand,
    UpdateAllCommand,
    UpdateCommand,
)
from gridguard.store.base import StoredStrategy
from gridguard.strategy.model import Strategy
from gridguard.strategy.rules import Outcome, StrategyRejectedError

log = logging.getLogger("gridguard.edge")


@dataclass(frozen=True, slots=True)
class Quarantined:
    """A stored strategy that is not enforced because it breaks a rule; ``reason`` says which."""

    id: int
    ele_meter_id: int
    device_type: int
    reason: str


def check_stored(row: StoredStrategy) -> Strategy:
    """The strategy of a stored row, validated like a report of it; ValueError says why not."""
    document = row.document
    path = unencodable_path(document)
    if path is not None:
        raise ValueError(f"{format_loc(path)}: must be valid Unicode text")
    try:
        StreamingOverDemand.model_validate(document)
    except ValidationError as exc:
        raise ValueError(describe_errors(exc)) from None
    try:
        strategy = Strategy.from_document(document)
    except (TypeError, KeyError) as exc:
        raise ValueError(f"(document): {exc}") from None
    if strategy.id != row.id:
        raise ValueError(f"id: the document says {strategy.id}, the row {row.id}")
    return strategy


def load_stored(rows: Iterable[StoredStrategy]) -> tuple[dict[int, Strategy], list[Quarantined]]:
    """The valid strategies by id, and the quarantined rows (each logged as an event)."""
    good: dict[int, Strategy] = {}
    bad: list[Quarantined] = []
    for row in rows:
        try:
            good[row.id] = check_stored(row)
        except ValueError as exc:
            held = Quarantined(row.id, row.ele_meter_id, row.device_type, str(exc))
            bad.append(held)
            event = {"event": "strategy_quarantined", "id": held.id, "reason": held.reason}
            log.error(json.dumps(event, ensure_ascii=True))  # noqa: TRY400 - no traceback
    return good, bad


def _held(where: str, held: Quarantined) -> StrategyRejectedError:
    return StrategyRejectedError(
        f"{where}: strategy {held.id} is quarantined (its stored fields break a rule: "
        f"{held.reason}); it cannot be updated: delete it, or create the strategy of meter "
        f"{held.ele_meter_id} anew, which replaces it"
    )


def quarantine_outcome(held: Mapping[int, Quarantined], command: Envelope) -> Outcome | None:
    """What a command naming a quarantined strategy's id does: a delete removes it (the
    outcome), an update is refused (StrategyRejectedError naming it); None for the rest."""
    if not held:
        return None
    if isinstance(command, DeleteCommand) and command.data.id in held:
        return Outcome(deletes=(command.data.id,), changed=True)
    if isinstance(command, UpdateCommand) and command.data.id in held:
        raise _held("data.id", held[command.data.id])
    if isinstance(command, UpdateAllCommand):
        for index, item in enumerate(command.data):
            if item.id is not None and item.id in held:
                raise _held(f"data[{index}].id", held[item.id])
    return None


def displacing(held: Mapping[int, Quarantined], outcome: Outcome) -> Outcome:
    """``outcome`` also deleting every quarantined strategy whose (meter, type) one of its
    upserts takes (D7 allows one per key; the valid one replaces the quarantined one)."""
    if not held or not outcome.upserts:
        return outcome
    by_key = {(q.ele_meter_id, q.device_type): q.id for q in held.values()}
    taken = tuple(
        by_key[s.ele_meter_id, s.device_type]
        for s in outcome.upserts
        if (s.ele_meter_id, s.device_type) in by_key
    )
    return replace(outcome, deletes=(*outcome.deletes, *taken)) if taken else outcome
