"""Wait for a condition with a timeout, instead of sleeping and hoping.

``wait_for`` polls a predicate on the event loop and raises ``AssertionError`` naming what
was awaited (and, if given, the state at the timeout), so a failing test says what never
happened.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

DEFAULT_POLL_S = 0.01


def _timed_out(what: str, timeout_s: float, state: Callable[[], object] | None) -> AssertionError:
    detail = f"; last state: {state()}" if state is not None else ""
    return AssertionError(f"timed out after {timeout_s:g} s waiting for {what}{detail}")


async def wait_for(
    predicate: Callable[[], object],
    timeout_s: float,
    what: str,
    *,
    poll_s: float = DEFAULT_POLL_S,
    state: Callable[[], object] | None = None,
) -> None:
    """Return once ``predicate()`` is true; raise ``AssertionError`` after ``timeout_s``.

    ``poll_s=0`` only yields to the loop between checks (for fake clocks that move when
    other tasks run)."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise _timed_out(what, timeout_s, state)
        await asyncio.sleep(poll_s)

