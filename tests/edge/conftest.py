"""Brokers and agents for the MQTT integration tests.

* ``broker_url``: the Mosquitto on 127.0.0.1:1883 and the in-process amqtt broker, both.
* ``own_mosquitto``: a Mosquitto process of the test's own on a free port (stop/restart).
* ``agent_factory``: an edge agent in this process on a given broker/scheme/store.

A missing service makes a test fail under CI=true and skip elsewhere.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gridguard.client import StrategyClient
from gridguard.demo.broker import EmbeddedBroker
from gridguard.edge.agent import EdgeAgent
from gridguard.edge.service import CommandService
from gridguard.protocol.topics import TopicScheme
from gridguard.site.config import SiteConfig, load_site_config
from gridguard.store.sql import SqlStrategyStore
from gridguard.testing.mosquitto import MosquittoProcess, free_port, port_open

EXAMPLE = Path(__file__).parents[2] / "examples" / "edge.toml"
IN_CI = os.environ.get("CI") == "true"


def missing_service(why: str) -> None:
    if IN_CI:
        pytest.fail(f"CI=true and {why}")
    pytest.skip(why)


@pytest.fixture(params=["mosquitto", "amqtt"])
async def broker_url(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """Each test runs against the system Mosquitto and the embedded amqtt broker."""
    if request.param == "mosquitto":
        if not port_open(1883):
            missing_service("no Mosquitto on 127.0.0.1:1883")
        yield "mqtt://127.0.0.1:1883"
        return
    port = free_port()
    async with EmbeddedBroker(port):
        yield f"mqtt://127.0.0.1:{port}"


@pytest.fixture
def own_mosquitto(tmp_path: Path) -> Iterator[MosquittoProcess]:
    if not (shutil.which("mosquitto") or Path("/usr/sbin/mosquitto").exists()):
        missing_service("the mosquitto binary is not installed")
    broker = MosquittoProcess()
    try:
        broker.start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield broker
    broker.remove()


SCHEMES = {
    "wudun": {"scheme": "wudun", "product_key": "pk-test"},
    "user": {"scheme": "user", "tenant": "tenant-test"},
    "custom": {"scheme": "custom", "prefix": "acme/ems/v1"},
}


def make_site(
    url: str, scheme: str = "custom", db_path: Path | None = None, **mqtt: Any
) -> SiteConfig:
    """The example site with a unique device uid, so tests never see each other's topics."""
    base = load_site_config(EXAMPLE).model_dump()
    base["device"]["uid"] = f"gg-test-{uuid.uuid4().hex[:10]}"
    base["mqtt"] = {"url": url, **SCHEMES[scheme], "status_enabled": False, **mqtt}
    if db_path is not None:
        base["store"] = {"url": f"sqlite:///{db_path}"}
    return SiteConfig.model_validate(base)


def scheme_of(site: SiteConfig) -> TopicScheme:
    m = site.mqtt
    return TopicScheme(
        m.scheme, product_key=m.product_key or "", tenant=m.tenant or "", prefix=m.prefix or ""
    )


class RunningAgent:
    def __init__(
        self,
        site: SiteConfig,
        agent: EdgeAgent,
        task: asyncio.Task[None],
        stop: asyncio.Event,
        store: SqlStrategyStore,
    ) -> None:
        self.site, self.agent, self.task, self.stop_event, self.store = (
            site,
            agent,
            task,
            stop,
            store,
        )

    def client(self, **kwargs: Any) -> StrategyClient:
        return StrategyClient(
            self.site.mqtt.url, scheme_of(self.site), self.site.device.uid, **kwargs
        )

    async def stop(self) -> None:
        """Stop the agent; a test fails (never hangs) if it does not end within 10 s."""
        self.stop_event.set()
        done, _ = await asyncio.wait({self.task}, timeout=10)
        if not done:
            self.task.cancel()
            await asyncio.wait({self.task}, timeout=5)
        await asyncio.wait_for(self.store.close(), 10)
        if not done:
            raise AssertionError("the agent did not stop within 10 s of its stop event")
        self.task.result()  # an agent that died with an error fails the test


AgentFactory = Callable[[SiteConfig], Any]


@pytest.fixture
async def agent_factory() -> AsyncIterator[AgentFactory]:
    """Start agents in this process; all are stopped at the end of the test."""
    running: list[RunningAgent] = []

    async def start(site: SiteConfig) -> RunningAgent:
        store = SqlStrategyStore(site.store.url)
        await store.open()
        service = CommandService(site=site, store=store)
        await service.load()
        agent = EdgeAgent(site, service)
        stop = asyncio.Event()
        task = asyncio.create_task(agent.run(stop))
        await asyncio.wait_for(agent.connected.wait(), 10)
        handle = RunningAgent(site, agent, task, stop, store)
        running.append(handle)
        return handle

    yield start
    for handle in running:
        if not handle.task.done():
            await handle.stop()
