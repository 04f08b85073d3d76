"""Stored strategies read back through the protocol's own validation (nothing stored can brick
the agent): a row that fails is quarantined, reported and not enforced, and the rest serve."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from pydantic import ValidationError

from gridguard.protocol.codec import describe_errors, format_loc, unencodable_path
from gridguard.protocol.models import StreamingOverDemand
from gridguard.store.base import StoredStrategy
from gridguard.strategy.model import Strategy

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
