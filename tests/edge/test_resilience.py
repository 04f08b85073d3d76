"""Durability and recovery: kill -9 of the agent, broker stop/restart, persistent session."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
import tomli_w

from gridguard.client import StrategyClient
from gridguard.protocol.models import SyncResult
from gridguard.protocol.topics import build_topic
from gridguard.site.config import SiteConfig
from gridguard.testing.mosquitto import MosquittoProcess
from gridguard.testing.wait import wait_for
from tests.edge.conftest import (
    EXAMPLE,
    SCHEMES,
    AgentFactory,
    make_site,
    scheme_of,
)
from tests.edge.test_mqtt import CREATE


def write_config(tmp_path: Path, url: str, uid: str) -> Path:
    data: dict[str, Any] = tomllib.loads(EXAMPLE.read_text())
    data["device"]["uid"] = uid
    data["mqtt"].update({"url": url, "status_enabled": False, **SCHEMES["custom"]})
    data["store"]["url"] = f"sqlite:///{tmp_path / 'edge.db'}"
    path = tmp_path / "edge.toml"
    path.write_bytes(tomli_w.dumps(data).encode())
    return path


def start_agent_process(config: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "gridguard", "edge", "run", "--config", str(config)],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


async def wait_for_sync(ems: StrategyClient, attempts: int = 50) -> list[Any]:
    """Sync until the agent answers (it may still be starting)."""
    for _ in range(attempts):
        try:
            result = await ems.request("sync")
            assert isinstance(result, SyncResult)
            return list(result.data)
        except TimeoutError:
            continue
    raise AssertionError("agent never answered sync")


@contextlib.asynccontextmanager
async def command_seen(
    broker: MosquittoProcess, site: SiteConfig, op: str
) -> AsyncIterator[asyncio.Event]:
    """An event set once the broker has passed on an ``op`` command for the site's device."""
    topic = build_topic(scheme_of(site), site.device.uid, op, "command")
    seen = asyncio.Event()
    async with aiomqtt.Client("127.0.0.1", broker.port) as watcher:
        await watcher.subscribe(topic, qos=1)

        async def watch() -> None:
            async for _message in watcher.messages:
                seen.set()

        watching = asyncio.create_task(watch())
        try:
            yield seen
        finally:
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watching


@pytest.mark.slow
async def test_commands_answered_200_survive_kill_9(
    own_mosquitto: MosquittoProcess, tmp_path: Path
) -> None:
    """Every command that got a 200 is there after kill -9; a command sent while the agent was
    dead is delivered to it after restart (persistent session, QoS 1, D5)."""
    site = make_site(own_mosquitto.url, "custom")
    config = write_config(tmp_path, own_mosquitto.url, site.device.uid)
    process = start_agent_process(config, tmp_path / "agent.log")
    try:
        async with StrategyClient(
            own_mosquitto.url, scheme_of(site), site.device.uid, timeout_s=1.0
        ) as ems:
            await wait_for_sync(ems)
            created = await ems.create(CREATE)
            assert created.code == 200
            assert created.data is not None
            strategy_id = created.data.id
            for value in range(1, 101):
                result = await ems.update({"id": strategy_id, "streaming_condition": value})
                assert result.code == 200
            os.kill(process.pid, signal.SIGKILL)
            process.wait(10)
            ems._timeout_s = 20.0  # before the request reads it: the restart takes a while
            async with command_seen(own_mosquitto, site, "update_all") as seen:
                pending = asyncio.create_task(ems.update_all([{**CREATE, "device_type": 4}]))
                await asyncio.wait_for(seen.wait(), 10)  # published while no agent is connected
            process = start_agent_process(config, tmp_path / "agent.log")
            delivered = await asyncio.wait_for(pending, 30)
            assert delivered.code == 200, delivered.msg
            ems._timeout_s = 5.0
            survived = await wait_for_sync(ems)
            assert next((s.id, s.streaming_condition) for s in survived) == (strategy_id, 100)
            assert len(survived) == 2
    finally:
        process.kill()
        process.wait(10)


@pytest.mark.integration
async def test_agent_reconnects_after_broker_restart(
    own_mosquitto: MosquittoProcess, tmp_path: Path, agent_factory: AgentFactory
) -> None:
    """The agent comes back by itself after the broker is stopped and restarted."""
    agent = await agent_factory(make_site(own_mosquitto.url, "wudun", tmp_path / "edge.db"))
    async with agent.client() as ems:
        assert (await ems.create(CREATE)).code == 200
    own_mosquitto.stop()
    await wait_for(
        lambda: not agent.agent.connected.is_set(), 5, "the agent to notice the broker left"
    )
    own_mosquitto.start()
    await asyncio.wait_for(agent.agent.connected.wait(), 40)
    async with agent.client() as ems:
        result = await ems.update({"id": 1, "streaming_condition": 42})
        assert result.code == 200
        assert [s.streaming_condition for s in (await ems.sync()).data] == [42]


@pytest.mark.integration
async def test_a_command_the_agent_died_on_is_delivered_again(
    own_mosquitto: MosquittoProcess,
    tmp_path: Path,
    agent_factory: AgentFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A command received but not yet committed when the agent dies was never acknowledged to
    the broker (PUBACK only after the commit): the next session gets it again and answers it
    (D5: at-least-once, answered once)."""
    site = make_site(own_mosquitto.url, "custom", tmp_path / "edge.db")
    first = await agent_factory(site)
    commit_started = asyncio.Event()

    async def disk_never_answers(_entries: object) -> None:
        commit_started.set()
        await asyncio.Event().wait()

    monkeypatch.setattr(first.store, "commit_batch", disk_never_answers)
    async with first.client(timeout_s=30) as ems:
        pending = asyncio.create_task(ems.create(CREATE))
        await asyncio.wait_for(commit_started.wait(), 10)
        first.task.cancel()  # the agent dies in the middle of the commit
        with contextlib.suppress(asyncio.CancelledError):
            await first.task
        await first.store.close()
        await agent_factory(site)  # same device, same client id, same persistent session
        created = await asyncio.wait_for(pending, 20)
        assert created.code == 200, created.msg
        assert created.data is not None
        assert [s.id for s in (await ems.sync()).data] == [created.data.id]
