"""Desired vs reported strategy sets, pure.

The desired set is the last set an operator applied successfully: after the EMS answers a
mutation with 200, the platform applies the same command to its desired set with the EMS's own
rules (:mod:`gridguard.strategy.rules`), taking the ids the EMS assigned. Drift compares the
caller-settable fields of each strategy (not times, author or EMS-derived fields) with the
latest list/post.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gridguard.protocol.models import (
    IdData,
    StrategyCreate,
    StrategyItem,
    StrategyUpdate,
    StreamingOverDemand,
)
from gridguard.strategy.model import Strategy
from gridguard.strategy.rules import (
    SiteView,
    apply_create,
    apply_delete,
    apply_update,
    apply_update_all,
)

COMPARED = (
    "ele_meter_id",
    "device_type",
    "streaming_status",
    "streaming_condition",
    "individual_phase_streaming_status",
    "individual_phase_streaming_condition",
    "over_demand_status",
    "over_demand_condition",
    "dynamic_demand_status",
    "dynamic_demand_percentage",
)
MUTATIONS = ("create", "update", "delete", "update_all")

StrategySet = dict[int, Strategy]


class _EveryMeter(dict[int, bool]):
    """The EMS already accepted the command: every meter counts as known and per-phase."""

    def __contains__(self, key: object) -> bool:
        return True

    def __getitem__(self, key: int) -> bool:
        return True


_ACCEPTED = SiteView(meter_per_phase=_EveryMeter())


def from_reported(report: list[dict[str, Any]]) -> StrategySet:
    """A list/post's ``data`` (as stored) -> id -> Strategy."""
    out: StrategySet = {}
    for raw in report:
        s = StreamingOverDemand.model_validate(raw)
        fields = {name: getattr(s, name) for name in COMPARED}
        fields["over_demand_condition"] = tuple(s.over_demand_condition)
        out[s.id] = Strategy(
            **fields,
            id=s.id,
            updated_by=s.updated_by,
            created_at=s.created_at,
            updated_at=s.updated_at,
        )
    return out


def to_documents(strategies: Mapping[int, Strategy]) -> list[dict[str, Any]]:
    return [strategies[i].document() for i in sorted(strategies)]


def from_documents(documents: list[dict[str, Any]]) -> StrategySet:
    return {d["id"]: Strategy.from_document(d) for d in documents}


def apply_success(
    base: Mapping[int, Strategy], op: str, request: Any, reply_data: Any, now: str
) -> StrategySet:
    """``base`` after a command the EMS answered with 200 (ValueError if it cannot apply)."""
    if op == "create":
        assigned = IdData.model_validate(reply_data).id
        outcome = apply_create(
            base, StrategyCreate.model_validate(request), site=_ACCEPTED, next_id=assigned, now=now
        )
    elif op == "update":
        outcome = apply_update(
            base, StrategyUpdate.model_validate(request), site=_ACCEPTED, now=now
        )
    elif op == "delete":
        outcome = apply_delete(base, IdData.model_validate(request))
    elif op == "update_all":
        items = [StrategyItem.model_validate(i) for i in request]
        assigned_ids = [IdData.model_validate(d).id for d in reply_data or []]
        new_ids = [i for i in assigned_ids if i not in base]
        outcome = apply_update_all(
            base, items, site=_ACCEPTED, next_id=min(new_ids, default=1), now=now
        )
    else:
        raise ValueError(f"op {op!r} changes no strategy")
    state = dict(base)
    for strategy_id in outcome.deletes:
        state.pop(strategy_id, None)
    state.update({s.id: s for s in outcome.upserts})
    return state


@dataclass(frozen=True, slots=True)
class Drift:
    """How the reported set differs from the desired one (empty = in step)."""

    missing: tuple[int, ...] = ()
    extra: tuple[int, ...] = ()
    changed: Mapping[int, tuple[str, ...]] | None = None

    @property
    def any(self) -> bool:
        return bool(self.missing or self.extra or self.changed)


def _fields(strategy: Strategy) -> dict[str, Any]:
    return {name: getattr(strategy, name) for name in COMPARED}


def drift(desired: Mapping[int, Strategy], reported: Mapping[int, Strategy]) -> Drift:
    changed: dict[int, tuple[str, ...]] = {}
    for strategy_id in desired.keys() & reported.keys():
        want, have = _fields(desired[strategy_id]), _fields(reported[strategy_id])
        names = tuple(name for name in COMPARED if want[name] != have[name])
        if names:
            changed[strategy_id] = names
    return Drift(
        missing=tuple(sorted(desired.keys() - reported.keys())),
        extra=tuple(sorted(reported.keys() - desired.keys())),
        changed=changed or None,
    )


def reconcile_items(
    desired: Mapping[int, Strategy], reported: Mapping[int, Strategy]
) -> list[StrategyItem]:
    """One update_all that re-applies the desired set: by id where the EMS still has it, else
    by (meter, class) so a strategy deleted on the EMS is created again."""
    items: list[StrategyItem] = []
    for strategy_id in sorted(desired):
        document = desired[strategy_id].document()
        fields = {name: document[name] for name in COMPARED}
        item_id = strategy_id if strategy_id in reported else None
        items.append(StrategyItem.model_validate({**fields, "id": item_id}))
    return items
