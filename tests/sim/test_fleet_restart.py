"""The fleet simulator survives its broker: every session comes back after a restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gridguard.sim.fleet import RECONNECT_MAX_S, Fleet, FleetConfig
from gridguard.testing.mosquitto import MosquittoProcess
from gridguard.testing.wait import wait_for
from tests.sim.test_fleet import CREATE, ems

pytestmark = pytest.mark.slow


async def test_devices_reconnect_after_the_broker_restarts(tmp_path: Path) -> None:
    """Every session comes back (jittered, within RECONNECT_MAX_S) and serves commands again."""
    broker = MosquittoProcess(tmp_path / "broker")
    broker.start()
    config = FleetConfig(
        count=5, mqtt_url=broker.url, prefix="test/fleet-restart", stats_interval_s=3600
    )
    restarted = Fleet(config, echo=lambda _: None)
    stop = asyncio.Event()
    task = asyncio.create_task(restarted.run(stop))
    try:
        await asyncio.wait_for(restarted.all_connected.wait(), 20)
        broker.stop()
        await wait_for(lambda: restarted.stats.connected == 0, 20, "every session to drop")
        broker.start()
        await wait_for(
            lambda: restarted.stats.connected == config.count,
            RECONNECT_MAX_S + 20,
            "every device to reconnect",
            state=lambda: restarted.stats,
        )
        assert restarted.stats.reconnects == config.count
        async with ems(restarted, 3) as sdk:
            assert (await sdk.create({**CREATE, "ele_meter_id": 9})).code == 200
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        broker.remove()
