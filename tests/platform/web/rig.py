"""The whole stack for browser tests: Mosquitto, site simulator, edge agent with control, platform.

The simulated site is the example site's meter 9 with its storage, PV and piles, every Modbus
port free, a 200 ms control cycle and a 0.5 s status period; the world is scripted by
:class:`Scene` (load and PV in kW, load steps at a simulated time).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from gridguard.edge.run import run_agent
from gridguard.platform.run import Running, run_platform
from gridguard.platform.security import Role
from gridguard.platform.settings import Settings
from gridguard.platform.users import create_user
from gridguard.sim.runner import SiteSimulator, World
from gridguard.site.config import (
    ChargerConfig,
    MeterConfig,
    PvConfig,
    SiteConfig,
    StorageConfig,
    load_site_config,
)

EXAMPLE = Path(__file__).parents[3] / "examples" / "edge.toml"
BROKER = "mqtt://127.0.0.1:1883"
PASSWORD = "a-long-password"


@dataclass
class Scene:
    """The world as a test scripts it: load steps at a simulated time."""

    load_kw: float = 450.0
    pv_kw: float = 340.0
    steps: list[tuple[float, float]] = field(default_factory=list)

    def world(self, t_s: float) -> World:
        load = self.load_kw
        for at_s, new_kw in self.steps:
            if t_s >= at_s:
                load = new_kw
        return World(load_kw=load, pv_available_kw=self.pv_kw, vehicles_plugged=False)


_Linked = TypeVar("_Linked", MeterConfig, StorageConfig, PvConfig, ChargerConfig)


def one_meter_site(prefix: str, db_path: Path) -> SiteConfig:
    site = load_site_config(EXAMPLE)

    def free(dev: _Linked) -> _Linked:
        return dev.model_copy(update={"modbus": dev.modbus.model_copy(update={"port": 0})})

    mqtt = site.mqtt.model_copy(
        update={"url": BROKER, "scheme": "custom", "prefix": prefix, "status_interval_s": 0.5}
    )
    return site.model_copy(
        update={
            "device": site.device.model_copy(update={"uid": f"gg-web-{uuid.uuid4().hex[:8]}"}),
            "meters": [free(m) for m in site.meters if m.id == 9],
            "storage": [free(s) for s in site.storage if s.meter_id == 9],
            "pv": [free(p) for p in site.pv],
            "chargers": [free(c) for c in site.chargers],
            "control": site.control.model_copy(update={"period_s": 0.2}),
            "mqtt": mqtt,
            "store": site.store.model_copy(update={"url": f"sqlite:///{db_path}"}),
        }
    )


@dataclass
class Stack:
    url: str
    uid: str
    scene: Scene
    sim: SiteSimulator
    running: Running

    async def user(self, name: str, role: Role) -> str:
        services = self.running.services
        assert services is not None
        await create_user(
            services.db, name=name, password=PASSWORD, role=role, now=datetime.now(UTC)
        )
        return name


@contextlib.asynccontextmanager
async def stack(db_url: str, prefix: str, tmp_path: Path, scene: Scene) -> AsyncIterator[Stack]:
    """Platform + simulator + controlling edge agent, all stopped on exit."""
    settings = Settings(db_url=db_url, mqtt_url=BROKER, port=0, prefixes=(prefix,))
    stop, running = asyncio.Event(), Running()
    site = one_meter_site(prefix, tmp_path / "edge.db")
    sim = SiteSimulator(site, profile=scene.world, start_s=0.0)
    await sim.start()
    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(run_platform(settings, stop, running=running), name="platform")
            steps = group.create_task(sim.run(speed=1.0, step_s=0.05), name="sim")
            group.create_task(run_agent(sim.servers.bound(), stop), name="agent")
            try:
                await asyncio.wait_for(running.ready.wait(), 20)
                yield Stack(running.url, site.device.uid, scene, sim, running)
            finally:
                stop.set()
                steps.cancel()
    finally:
        await sim.stop()
