"""The crash lane: ``kill -9`` of the agent at random points of a command stream, >= 20 times,
the platform re-sending each command under the same mid until answered. At the end nothing
answered 200 was lost (every delete of a created strategy succeeds), nothing was applied twice
(create ids are consecutive: ids are never reused), every command was answered (the same
reply for every answer to a mid), and SQLite's ``PRAGMA integrity_check`` is ok.

    GG_CRASH_SEED=1234 .venv/bin/python -m pytest -q -s -m slow tests/lanes/test_crash.py
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest

from gridguard.site.config import load_site_config
from gridguard.testing.mosquitto import MosquittoProcess
from tests.edge.test_mqtt import CREATE
from tests.edge.test_reply_durability import Platform, platform
from tests.edge.test_resilience import start_agent_process, write_config

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
KILLS = 20
UPDATES_PER_STEP = 8
SEED = int(os.environ.get("GG_CRASH_SEED", random.randrange(2**32)))
RESEND_S = 2.0


async def answered(ems: Platform, op: str, data: object) -> dict[str, Any]:
    """Send until answered, always under the same mid."""
    mid = str(uuid.uuid4())
    for _ in range(60):
        await ems.send(op, data, mid)
        await ems.wait_answered([mid], RESEND_S)
        if mid in ems.replies:
            return ems.replies[mid][0]
    raise AssertionError(f"{op} {mid} never answered")


async def test_kill_9_at_random_points_loses_and_doubles_nothing(
    own_mosquitto: MosquittoProcess, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    print(f"\ncrash lane: seed {SEED} (GG_CRASH_SEED={SEED} to replay)")  # noqa: T201
    uid = f"gg-crash-{uuid.uuid4().hex[:8]}"
    config = write_config(tmp_path, own_mosquitto.url, uid)
    site = load_site_config(config)
    log = tmp_path / "agent.log"
    process = start_agent_process(config, log)
    kills, ids, commands = 0, [], 0
    try:
        async with platform(own_mosquitto.port, site) as ems:

            async def killer() -> None:
                nonlocal process, kills
                while kills < KILLS:
                    # A random point of the stream: after 1..40 more answered mids.
                    await ems.wait_count(len(ems.replies) + rng.randint(1, 40), 120)
                    os.kill(process.pid, signal.SIGKILL)
                    process.wait(10)
                    kills += 1
                    process = start_agent_process(config, log)

            chaos = asyncio.create_task(killer())
            while not chaos.done():
                created = await answered(ems, "create", CREATE)
                assert created["code"] == 200, created
                strategy_id = created["data"]["id"]
                ids.append(strategy_id)
                updates = [
                    answered(ems, "update", {"id": strategy_id, "streaming_condition": n})
                    for n in range(UPDATES_PER_STEP)
                ]
                assert all(r["code"] == 200 for r in await asyncio.gather(*updates))
                deleted = await answered(ems, "delete", {"id": strategy_id})
                assert deleted["code"] == 200, deleted  # the create's 200 was not lost
                commands += 2 + UPDATES_PER_STEP
            await chaos
            synced = await answered(ems, "sync", None)
            assert synced["data"] == []
    finally:
        process.kill()
        process.wait(10)
    assert kills >= KILLS
    assert ids == list(range(1, len(ids) + 1)), "a create was applied twice (an id skipped)"
    for mid, replies in ems.replies.items():
        assert all(r == replies[0] for r in replies), f"two different replies to {mid}"
    with sqlite3.connect(tmp_path / "edge.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    print(f"crash lane: {kills} kill -9, {commands} commands answered, seed {SEED}")  # noqa: T201
