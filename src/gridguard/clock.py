"""The injected clock: monotonic seconds for timing, aware wall time for months and demand.

Rulings: none owned.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class MonotonicClock(Protocol):
    """What timing alone needs: the fakes, the Modbus link's backoff."""

    def monotonic_s(self) -> float:
        """Seconds on a monotonic scale, for periods and timeouts."""
        ...


class Clock(MonotonicClock, Protocol):
    """The full clock of a running service: timing, wall time, waiting."""

    def now(self) -> datetime:
        """The present wall time, timezone-aware."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` on this clock."""
        ...


class SystemClock:
    """The real clock."""

    def monotonic_s(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class FakeClock:
    """A clock that moves only when told to: ``sleep`` advances it at once."""

    def __init__(self, start: datetime | None = None) -> None:
        self._start = start or datetime(2024, 6, 1, tzinfo=UTC)
        if self._start.tzinfo is None:
            raise ValueError("FakeClock needs an aware start time")
        self._elapsed_s = 0.0

    def monotonic_s(self) -> float:
        return self._elapsed_s

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self._elapsed_s)

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` (>= 0)."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        self._elapsed_s += seconds

    async def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))
        await asyncio.sleep(0)
