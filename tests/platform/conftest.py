"""A running platform (in this process, on a free port) and real edge agents on Mosquitto.

Every test gets its own topic prefix (``ggp-<hex>/ems``), device uids and database, so tests
running at the same time on the shared broker and PostgreSQL never see each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from gridguard.edge.run import run_agent
from gridguard.platform.run import Running, run_platform
from gridguard.platform.security import Role
from gridguard.platform.settings import Settings
from gridguard.platform.users import create_token, create_user
from gridguard.site.config import SiteConfig, load_site_config
from gridguard.store.scratch import create_scratch_database, drop_scratch_database
from gridguard.testing.mosquitto import port_open

EXAMPLE = Path(__file__).parents[2] / "examples" / "edge.toml"
BROKER = "mqtt://127.0.0.1:1883"
ADMIN_URL = os.environ.get("GRIDGUARD_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
T = TypeVar("T")


def missing_service(why: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {why}")
    pytest.skip(why)


async def eventually(
    probe: Callable[[], Awaitable[T | None]], *, timeout_s: float = 10.0, what: str = "condition"
) -> T:
    """Poll ``probe`` until it returns something truthy; fail after ``timeout_s``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        value = await probe()
        if value:
            return value
        if loop.time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'platform.db'}"
        return
    try:
        url = await create_scratch_database(ADMIN_URL, prefix="ggplat_test")
    except OSError as exc:
        missing_service(f"no PostgreSQL at {ADMIN_URL}: {exc}")
    yield url
    await drop_scratch_database(url, admin_url=ADMIN_URL)


@pytest.fixture
def prefix() -> str:
    if not port_open(1883):
        missing_service("no Mosquitto on 127.0.0.1:1883")
    return f"ggp-{uuid.uuid4().hex[:10]}/ems"


@dataclass
class Platform:
    running: Running
    stop_event: asyncio.Event
    task: asyncio.Task[None]
    admin: httpx.AsyncClient = field(default_factory=httpx.AsyncClient)
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    async def stop(self) -> None:
        """Stop serving; what the telemetry writer buffered is flushed first."""
        for client in self.clients:
            await client.aclose()
        self.clients.clear()
        self.stop_event.set()
        await asyncio.wait_for(self.task, 15)

    @property
    def url(self) -> str:
        return self.running.url

    def client(self, token: str | None = None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        client = httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30)
        self.clients.append(client)
        return client

    async def user(self, name: str, role: Role, password: str = "a-long-password") -> str:
        """Create a user; return an API token of theirs."""
        services = self.running.services
        assert services is not None
        user = await create_user(
            services.db, name=name, password=password, role=role, now=datetime.now(UTC)
        )
        token = await create_token(services.db, user_id=user.id, name="test", now=datetime.now(UTC))
        return token.token


PlatformFactory = Callable[..., Awaitable[Platform]]


@pytest.fixture
async def platform_factory(db_url: str, prefix: str) -> AsyncIterator[PlatformFactory]:
    """Start platforms on the test's database and prefix; all are stopped at the end."""
    started: list[Platform] = []

    async def start(**overrides: Any) -> Platform:
        settings = Settings(
            **{
                "db_url": db_url,
                "mqtt_url": BROKER,
                "port": 0,
                "prefixes": (prefix,),
                "command_timeout_s": 5.0,
                **overrides,
            }
        )
        stop, running = asyncio.Event(), Running()
        task = asyncio.create_task(run_platform(settings, stop, running=running))
        ready = asyncio.create_task(running.ready.wait())
        await asyncio.wait({task, ready}, timeout=15, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()
        assert running.ready.is_set(), "platform did not start"
        platform = Platform(running, stop, task)
        started.append(platform)
        platform.admin = platform.client(
            await platform.user(f"admin-{len(started) - 1}", Role.ADMIN)
        )
        return platform

    yield start
    for platform in started:
        if not platform.task.done():
            await platform.stop()


@pytest.fixture
async def platform(platform_factory: PlatformFactory) -> Platform:
    return await platform_factory()


def make_site(prefix: str, db_path: Path, uid: str | None = None) -> SiteConfig:
    base = load_site_config(EXAMPLE).model_dump()
    base["device"]["uid"] = uid or f"gg-plat-{uuid.uuid4().hex[:10]}"
    base["mqtt"] = {"url": BROKER, "scheme": "custom", "prefix": prefix, "status_enabled": False}
    base["store"] = {"url": f"sqlite:///{db_path}"}
    return SiteConfig.model_validate(base)


@dataclass
class Agent:
    site: SiteConfig
    stop_event: asyncio.Event
    task: asyncio.Task[None]

    @property
    def uid(self) -> str:
        return self.site.device.uid

    async def stop(self) -> None:
        self.stop_event.set()
        await asyncio.wait_for(self.task, 10)


AgentFactory = Callable[..., Awaitable[Agent]]


@pytest.fixture
async def agent_factory(prefix: str, tmp_path: Path) -> AsyncIterator[AgentFactory]:
    """Real edge agents (protocol only, no field I/O) on Mosquitto under the test's prefix."""
    agents: list[Agent] = []

    async def start(site: SiteConfig | None = None) -> Agent:
        site = site or make_site(prefix, tmp_path / f"edge-{len(agents)}.db")
        stop = asyncio.Event()
        task = asyncio.create_task(run_agent(site, stop, control=False))
        agent = Agent(site, stop, task)
        agents.append(agent)
        return agent

    yield start
    for agent in agents:
        if not agent.task.done():
            with contextlib.suppress(Exception):
                await agent.stop()


async def device_seen(platform: Platform, uid: str) -> dict[str, Any]:
    """Wait until the platform has the device's first list/post."""

    async def probe() -> dict[str, Any] | None:
        response = await platform.admin.get(f"/api/devices/{uid}")
        if response.status_code == 200 and response.json()["last_list_at"]:
            return dict(response.json())
        return None

    return await eventually(probe, what=f"device {uid} to report")
