"""The shared wait helper: returns once the condition holds, fails naming what never came."""

from __future__ import annotations

import asyncio

import pytest

from gridguard.testing.wait import wait_for

pytestmark = pytest.mark.unit


async def test_returns_as_soon_as_the_condition_holds() -> None:
    flag: list[bool] = []
    asyncio.get_running_loop().call_soon(flag.append, True)
    await wait_for(lambda: flag, 5, "the flag")
    assert flag == [True]


async def test_timeout_names_what_and_the_last_state() -> None:
    with pytest.raises(AssertionError, match=r"after 0.05 s waiting for the door; last state: 3"):
        await wait_for(lambda: False, 0.05, "the door", state=lambda: 3)


async def test_zero_poll_only_yields_so_other_tasks_move_between_checks() -> None:
    """With poll_s=0 a task that counts per loop turn is seen at each value, none skipped."""
    count = [0]

    async def counter() -> None:
        while count[0] < 100:
            count[0] += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(counter())
    await wait_for(lambda: count[0] >= 10, 5, "ten counts", poll_s=0)
    assert count[0] <= 11
    await task
