"""Wait on a condition with a timeout, for tests: never sleep to wait for behaviour."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def wait_until(
    predicate: Callable[[], bool], *, timeout_s: float, what: str, poll_s: float = 0.01
) -> None:
    """Return as soon as ``predicate()`` holds; AssertionError naming ``what`` after timeout."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        await asyncio.sleep(poll_s)
