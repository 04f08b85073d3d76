"""Brokers and agents for the MQTT integration tests.

* ``broker_url``: the Mosquitto on 127.0.0.1:1883 and the in-process amqtt broker, both.
* ``own_mosquitto``: a Mosquitto process of the test's own on a free port (stop/restart).
* ``agent_factory``: an edge agent in this process on a given broker/scheme/store.

A missing service makes a test fail under CI=true and skip elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gridguard.broker import EmbeddedBroker
from gridguard.client import StrategyClient
from gridguard.edge.agent import EdgeAgent
from gridguard.edge.service import CommandService
from gridguard.protocol.topics import TopicScheme
from gridguard.siteconfig import SiteConfig, load_site_config
from gridguard.store.sql import SqlStrategyStore

EXAMPLE = Path(__file__).parents[2] / "examples" / "edge.toml"
IN_CI = os.environ.get("CI") == "true"


def missing_service(why: str) -> None:
    if IN_CI:
        pytest.fail(f"CI=true and {why}")
    pytest.skip(why)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
        return True
    return False


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


class MosquittoProcess:
    """A Mosquitto of our own on a free loopback port, with persistence, stoppable."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o777)  # as root, mosquitto drops to its own user
        (folder / "mosquitto.conf").write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
            f"persistence true\npersistence_location {folder}/\nset_tcp_nodelay true\n"
            f"log_dest file {folder}/mosquitto.log\n"
        )

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.process = subprocess.Popen(
            [binary, "-c", str(self.folder / "mosquitto.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not port_open(self.port):
            if time.monotonic() > deadline or self.process.poll() is not None:
                pytest.fail("own mosquitto did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


@pytest.fixture
def own_mosquitto(tmp_path: Path) -> Iterator[MosquittoProcess]:
    if not (shutil.which("mosquitto") or Path("/usr/sbin/mosquitto").exists()):
        missing_service("the mosquitto binary is not installed")
    broker = MosquittoProcess(tmp_path / "mosquitto")
    broker.start()
    yield broker
    broker.stop()


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
        self.stop_event.set()
        await asyncio.wait_for(self.task, 10)
        await self.store.close()


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
