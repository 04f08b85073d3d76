"""The fuzz lane: >= 10,000 hostile payloads (hypothesis) over the five command topics against
a real agent process and a private Mosquitto. After each batch: the agent is alive and serving
(a sentinel sync is answered), every recoverable mid got exactly one reply, a batch answered
only with errors changed nothing; at the end a restart still loads every stored strategy.

    GG_FUZZ_SEED=1234 .venv/bin/python -m pytest -q -s -m slow tests/lanes/test_fuzz.py
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from gridguard.edge.stored import load_stored
from gridguard.site.config import load_site_config
from gridguard.store.sql import SqlStrategyStore
from gridguard.testing.mosquitto import MosquittoProcess
from tests.edge.conftest import missing_service
from tests.edge.test_reply_durability import Platform, platform
from tests.edge.test_resilience import start_agent_process, write_config
from tests.lanes.hostile import Hostile, hostile

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
BATCH = 100
BATCHES = 101
SEED = int(os.environ.get("GG_FUZZ_SEED", random.randrange(2**32)))
DEVICE = f"gg-fuzz-{uuid.uuid4().hex[:8]}"


class Lane:
    def __init__(self, broker: MosquittoProcess, folder: Path) -> None:
        self.broker = broker
        self.folder = folder
        self.config = write_config(folder, broker.url, DEVICE)
        self.site = load_site_config(self.config)
        self.process: subprocess.Popen[bytes] | None = None
        self.sent = 0
        self.state: list[Any] | None = None
        self.unchanged_checks = 0

    def start(self) -> None:
        self.process = start_agent_process(self.config, self.folder / "agent.log")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(20)
            self.process = None


@pytest.fixture(scope="module")
def lane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lane]:
    if not Path("/usr/sbin/mosquitto").exists():
        missing_service("the mosquitto binary is not installed")
    broker = MosquittoProcess()
    broker.start()
    running = Lane(broker, tmp_path_factory.mktemp("fuzz"))
    running.start()
    print(f"\nfuzz lane: seed {SEED} (GG_FUZZ_SEED={SEED} to replay)")  # noqa: T201
    yield running
    running.stop()
    broker.remove()
    print(  # noqa: T201
        f"fuzz lane: {running.sent} hostile payloads sent, {running.unchanged_checks} batches "
        f"refused whole and checked unchanged, seed {SEED}"
    )


async def sentinel(ems: Platform, timeout_s: float) -> dict[str, Any]:
    """A valid sync, re-sent under its mid until answered: the agent is alive and serving."""
    mid = str(uuid.uuid4())
    for _ in range(int(timeout_s)):
        await ems.send("sync", None, mid)
        await ems.wait_answered([mid], 1.0)
        if mid in ems.replies:
            return ems.replies[mid][0]
    raise AssertionError("the agent does not answer a valid sync")


STORED_FIELDS = (
    "id",
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
    "updated_by",
    "updated_at",
)


def stored_view(sync_reply: dict[str, Any]) -> list[dict[str, Any]]:
    """What commands change (the live fields of a report move on their own)."""
    return [{k: s.get(k) for k in STORED_FIELDS} for s in sync_reply["data"]]


async def run_batch(lane: Lane, payloads: list[Hostile]) -> None:
    async with platform(lane.broker.port, lane.site) as ems:
        before = lane.state if lane.state is not None else stored_view(await sentinel(ems, 60))
        for item in payloads:
            await ems.client.publish(ems.topic(item.op, "command"), item.payload, qos=1)
        lane.sent += len(payloads)
        after = await sentinel(ems, 60)
        assert after["code"] == 200
        mids = [p.mid for p in payloads if p.mid is not None]
        await ems.wait_answered(mids, 10)
        counts = {mid: len(ems.replies.get(mid, [])) for mid in mids}
        assert {m: c for m, c in counts.items() if c != 1} == {}, "not exactly one reply"
        codes = {r["code"] for mid in mids for r in ems.replies[mid]}
        assert codes <= {200, 400}, f"unexpected codes {codes}"
        lane.state = stored_view(after)
        if 200 not in codes:  # a payload without a recoverable mid is never a valid command
            assert lane.state == before, "state changed though every command was refused"
            lane.unchanged_checks += 1


@seed(SEED)
@settings(
    max_examples=BATCHES,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
@given(batch=st.lists(hostile(DEVICE), min_size=BATCH, max_size=BATCH))
def test_hostile_payloads_never_stop_the_agent(lane: Lane, batch: list[Hostile]) -> None:
    assert lane.process is not None
    assert lane.process.poll() is None, "the agent process died"
    asyncio.run(run_batch(lane, batch))


def test_after_the_fuzz_a_restart_loads_everything(lane: Lane) -> None:
    """Run after the batches (file order): nothing stored is out of range or unencodable."""
    assert lane.sent >= 10_000
    lane.stop()

    async def load() -> int:
        store = SqlStrategyStore(lane.site.store.url)
        await store.open()
        try:
            good, bad = load_stored(await store.list_strategies())
        finally:
            await store.close()
        assert bad == []
        return len(good)

    print(f"fuzz lane: {asyncio.run(load())} strategies stored, all valid")  # noqa: T201
    lane.start()

    async def serves() -> None:
        async with platform(lane.broker.port, lane.site) as ems:
            assert (await sentinel(ems, 60))["code"] == 200

    asyncio.run(serves())
