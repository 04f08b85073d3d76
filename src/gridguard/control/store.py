"""Where the control engine keeps state across restarts (the demand meter, D18).

A narrow interface, injected: the edge agent's SQL store implements it; tests and the bench
use :class:`MemoryStateStore`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Protocol


class StateStore(Protocol):
    async def load(self, key: str) -> dict[str, Any] | None:
        """The value last saved under ``key``, or None."""
        ...

    async def save_many(self, values: Mapping[str, dict[str, Any]]) -> None:
        """Persist JSON-able dicts, each replacing the value under its key, all at once."""
        ...


class MemoryStateStore:
    """An in-memory StateStore; values are deep-copied so callers cannot alias them."""

    def __init__(self) -> None:
        self.values: dict[str, dict[str, Any]] = {}

    async def load(self, key: str) -> dict[str, Any] | None:
        value = self.values.get(key)
        return copy.deepcopy(value) if value is not None else None

    async def save_many(self, values: Mapping[str, dict[str, Any]]) -> None:
        self.values.update(copy.deepcopy(dict(values)))
