"""A reply the broker never acknowledges ends the session (so the agent moves to the next
broker) instead of holding every later command unanswered while pings still succeed."""

from __future__ import annotations

import asyncio

import aiomqtt
import pytest

from gridguard.edge.agent import RepliesInFlight, watch_replies

pytestmark = pytest.mark.unit


class Ticks:
    """A fake clock whose sleep advances it; after ``last`` sleeps it stops the watcher."""

    def __init__(self, last: int) -> None:
        self.now_s = 0.0
        self.sleeps = 0
        self.last = last

    def now(self) -> float:
        return self.now_s

    async def sleep(self, period_s: float) -> None:
        self.sleeps += 1
        if self.sleeps > self.last:
            raise asyncio.CancelledError
        self.now_s += period_s


def pending() -> asyncio.Task[None]:
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    return asyncio.ensure_future(future)


async def test_the_oldest_waiting_reply_sets_the_age() -> None:
    waiting = RepliesInFlight()
    assert waiting.oldest_age_s(100.0) == 0.0
    first, second = pending(), pending()
    waiting.add(first, 10.0)
    waiting.add(second, 12.0)
    assert waiting.oldest_age_s(15.0) == 5.0
    first.cancel()  # done, however it ended
    await asyncio.gather(first, return_exceptions=True)
    assert waiting.oldest_age_s(15.0) == 3.0
    second.cancel()
    await asyncio.gather(second, return_exceptions=True)
    assert waiting.oldest_age_s(15.0) == 0.0


async def test_a_reply_stuck_for_the_limit_ends_the_session() -> None:
    ticks = Ticks(last=100)
    waiting = RepliesInFlight()
    stuck = pending()
    waiting.add(stuck, 0.0)
    with pytest.raises(aiomqtt.MqttError, match=r"mqtt\.puback_timeout_s = 4"):
        await watch_replies(waiting, 4.0, ticks.now, ticks.sleep)
    assert ticks.sleeps == 4  # one check a second: not before the limit, not after
    stuck.cancel()


async def test_replies_acknowledged_in_time_keep_the_session() -> None:
    ticks = Ticks(last=50)
    waiting = RepliesInFlight()
    acked = pending()
    waiting.add(acked, 0.0)
    acked.cancel()
    await asyncio.gather(acked, return_exceptions=True)
    with pytest.raises(asyncio.CancelledError):  # only the fake clock's end stops it
        await watch_replies(waiting, 4.0, ticks.now, ticks.sleep)
    assert ticks.sleeps == 51
