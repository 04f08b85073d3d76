"""Applying commands to the strategy set, pure: identity (D7), create (D8), update (D9),
delete (D10) and update_all (D11).

Each ``apply_*`` takes the current strategies (id -> Strategy), the validated command data and
what it needs of the site, and returns an :class:`Outcome` (rows to upsert, ids to delete, the
new id counter, the reply's ``data``) or raises :class:`StrategyRejected` (a 400 whose message
names the field and the rule). Nothing is changed on rejection: the caller commits an Outcome
only as a whole.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from gridguard.protocol.errors import ProtocolError
from gridguard.protocol.models import (
    CreateCommand,
    DeleteCommand,
    Envelope,
    IdData,
    StrategyCreate,
    StrategyFields,
    StrategyItem,
    StrategyUpdate,
    UpdateAllCommand,
    UpdateCommand,
)
from gridguard.strategy.model import Strategy
from gridguard.vocab import DISABLED, ENABLED, DeviceClass


class StrategyRejectedError(ProtocolError):
    """A command that is well-formed but breaks a strategy rule (400)."""


@dataclass(frozen=True, slots=True)
class SiteView:
    """What the rules need to know of the site: its meters and which give per-phase power."""

    meter_per_phase: Mapping[int, bool]


@dataclass(frozen=True, slots=True)
class Outcome:
    upserts: tuple[Strategy, ...] = ()
    deletes: tuple[int, ...] = ()
    next_id: int | None = None
    reply_data: Any = None
    changed: bool = field(default=False)


_FIELDS = (
    "device_type",
    "ele_meter_id",
    "streaming_status",
    "streaming_condition",
    "individual_phase_streaming_status",
    "individual_phase_streaming_condition",
    "over_demand_status",
    "over_demand_condition",
    "dynamic_demand_status",
    "dynamic_demand_percentage",
    "updated_by",
)


def _given(data: StrategyFields) -> dict[str, Any]:
    """The caller-settable fields actually present in the command (D9 merge)."""
    given = {name: getattr(data, name) for name in _FIELDS if name in data.model_fields_set}
    given = {k: v for k, v in given.items() if v is not None}
    if "over_demand_condition" in given:
        given["over_demand_condition"] = tuple(given["over_demand_condition"])
    return given


def _new_strategy(strategy_id: int, given: dict[str, Any], now: str, where: str) -> Strategy:
    missing = [name for name in StrategyCreate.REQUIRED if name not in given]
    if missing:
        raise StrategyRejectedError(f"{where}.{missing[0]}: required field missing")
    return Strategy(
        id=strategy_id,
        device_type=given.get("device_type", 2),  # D8: defaults to storage
        ele_meter_id=given["ele_meter_id"],
        streaming_status=given["streaming_status"],
        streaming_condition=given.get("streaming_condition", 0),  # D14: absent -> 0
        individual_phase_streaming_status=given["individual_phase_streaming_status"],
        individual_phase_streaming_condition=given.get("individual_phase_streaming_condition", 0),
        over_demand_status=given["over_demand_status"],
        over_demand_condition=given["over_demand_condition"],
        dynamic_demand_status=given.get("dynamic_demand_status", DISABLED),  # D14
        dynamic_demand_percentage=given["dynamic_demand_percentage"],
        updated_by=given.get("updated_by", "mqtt"),  # D8
        created_at=now,
        updated_at=now,
    )


def _check_site(strategy: Strategy, site: SiteView, where: str) -> None:
    if strategy.ele_meter_id not in site.meter_per_phase:
        known = ", ".join(str(m) for m in sorted(site.meter_per_phase)) or "none"
        raise StrategyRejectedError(
            f"{where}.ele_meter_id: meter {strategy.ele_meter_id} is not in this EMS's site "
            f"configuration (meters: {known})"
        )
    phase_on = strategy.individual_phase_streaming_status == ENABLED
    if phase_on and not site.meter_per_phase[strategy.ele_meter_id]:
        raise StrategyRejectedError(
            f"{where}.individual_phase_streaming_status: meter {strategy.ele_meter_id} gives "
            "no per-phase power, so single-phase anti-backflow cannot be enabled (D16)"
        )


Key = tuple[int, int]
"""(ele_meter_id, device_type): at most one strategy each (D7)."""


def _key(strategy: Strategy) -> Key:
    return (strategy.ele_meter_id, strategy.device_type)


def _key_index(strategies: Mapping[int, Strategy]) -> dict[Key, int]:
    """Which strategy holds each (meter, type): one pass, so a check is a lookup."""
    return {_key(s): s.id for s in strategies.values()}


def _check_unique(strategy: Strategy, index: Mapping[Key, int], where: str) -> None:
    """D7: at most one strategy per (ele_meter_id, device_type)."""
    other = index.get(_key(strategy))
    if other is not None and other != strategy.id:
        kind = DeviceClass(strategy.device_type).label
        raise StrategyRejectedError(
            f"{where}: meter {strategy.ele_meter_id} already has a {kind} strategy "
            f"(id {other}); update it instead (D7)"
        )


def apply_create(
    current: Mapping[int, Strategy],
    data: StrategyCreate,
    *,
    site: SiteView,
    next_id: int,
    now: str,
) -> Outcome:
    """D8: create; the reply's data is ``{"id": N}``."""
    strategy = _new_strategy(next_id, _given(data), now, "data")
    _check_site(strategy, site, "data")
    _check_unique(strategy, _key_index(current), "data")
    return Outcome((strategy,), (), next_id + 1, {"id": strategy.id}, changed=True)


def _merged(existing: Strategy, given: dict[str, Any], now: str) -> Strategy:
    fields = {k: v for k, v in given.items() if k != "id"}
    return replace(existing, **fields, updated_at=now)


def _find(current: Mapping[int, Strategy], strategy_id: int, where: str) -> Strategy:
    found = current.get(strategy_id)
    if found is None:
        raise StrategyRejectedError(f"{where}: strategy {strategy_id} not found")
    return found


def apply_update(
    current: Mapping[int, Strategy], data: StrategyUpdate, *, site: SiteView, now: str
) -> Outcome:
    """D9: fields present replace the stored ones, absent ones are kept."""
    existing = _find(current, data.id, "data.id")
    updated = _merged(existing, _given(data), now)
    _check_site(updated, site, "data")
    _check_unique(updated, _key_index(current), "data")
    return Outcome((updated,), (), None, None, changed=True)


def apply_delete(current: Mapping[int, Strategy], data: IdData) -> Outcome:
    """D10: an unknown id is a 400."""
    _find(current, data.id, "data.id")
    return Outcome((), (data.id,), None, None, changed=True)


def _match(
    item: StrategyItem,
    given: dict[str, Any],
    state: Mapping[int, Strategy],
    index: Mapping[Key, int],
) -> Strategy | None:
    if item.id is not None:
        return state.get(item.id)
    held = index.get((given.get("ele_meter_id"), given.get("device_type", 2)))  # type: ignore[arg-type]
    return None if held is None else state[held]


def apply_update_all(
    current: Mapping[int, Strategy],
    items: list[StrategyItem],
    *,
    site: SiteView,
    next_id: int,
    now: str,
) -> Outcome:
    """D11: batch upsert, all-or-nothing; unnamed strategies are kept."""
    state = dict(current)
    index = _key_index(state)
    touched: dict[int, Strategy] = {}
    named_by: dict[int, int] = {}
    reply: list[dict[str, int]] = []
    for position, item in enumerate(items):
        where = f"data[{position}]"
        given = _given(item)
        existing = _match(item, given, state, index)
        if item.id is not None and existing is None:
            raise StrategyRejectedError(f"{where}.id: strategy {item.id} not found")
        if existing is None:
            strategy = _new_strategy(next_id, given, now, where)
            next_id += 1
        else:
            strategy = _merged(existing, given, now)
        _check_site(strategy, site, where)
        _check_unique(strategy, index, where)
        if strategy.id in named_by:
            raise StrategyRejectedError(
                f"{where}: names the same strategy as data[{named_by[strategy.id]}] "
                f"(id {strategy.id}); put each strategy in the batch once"
            )
        named_by[strategy.id] = position
        if existing is not None and index.get(_key(existing)) == existing.id:
            del index[_key(existing)]  # a key it moved away from is free again
        index[_key(strategy)] = strategy.id
        state[strategy.id] = touched[strategy.id] = strategy
        reply.append({"id": strategy.id})
    return Outcome(tuple(touched.values()), (), next_id, reply, changed=bool(touched))


def apply_command(
    current: Mapping[int, Strategy],
    command: Envelope,
    *,
    site: SiteView,
    next_id: int,
    now: str,
) -> Outcome:
    """The outcome of any decoded command (D8-D11); sync changes nothing (D12)."""
    if isinstance(command, CreateCommand):
        return apply_create(current, command.data, site=site, next_id=next_id, now=now)
    if isinstance(command, UpdateCommand):
        return apply_update(current, command.data, site=site, now=now)
    if isinstance(command, DeleteCommand):
        return apply_delete(current, command.data)
    if isinstance(command, UpdateAllCommand):
        return apply_update_all(current, command.data, site=site, next_id=next_id, now=now)
    return Outcome()
