"""Strategies set over MQTT drive the control engine: enable acts, disable stops next cycle.

The agent runs with the real control engine on in-process fake devices (a plant model) at a
100 ms cycle on the system clock, against both brokers.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiomqtt
import pytest

from gridguard.client import StrategyClient
from gridguard.clock import SystemClock
from gridguard.control.engine import ControlEngine
from gridguard.control.params import ControlTuning
from gridguard.control.status import ControlStatus, MeterStatus
from gridguard.control.store import MemoryStateStore
from gridguard.devices.fakes import FakeSite
from gridguard.edge.agent import EdgeAgent
from gridguard.edge.control_link import EngineController
from gridguard.edge.service import CommandService
from gridguard.plant.model import PlantInputs
from gridguard.protocol.topics import build_topic
from gridguard.site.config import SiteConfig
from gridguard.store.memory import MemoryStrategyStore
from gridguard.testing.wait import wait_for
from tests.edge.conftest import make_site, scheme_of
from tests.edge.test_mqtt import CREATE

pytestmark = pytest.mark.integration

PERIOD_S = 0.1
SUNNY = PlantInputs((70.0, 70.0, 70.0), (380.0,), (0.0, 0.0))  # 210 kW load, 380 kW of sun
QUIET = PlantInputs((30.0, 30.0, 30.0), (), ())
BASELINE_KW = 10


class Running:
    def __init__(self, site: SiteConfig, engine: ControlEngine, agent: EdgeAgent) -> None:
        self.site, self.engine, self.agent = site, engine, agent

    def meter9(self) -> MeterStatus:
        return next(m for m in self.engine.status().meters if m.meter_id == 9)

    def status(self) -> ControlStatus:
        return self.engine.status()

    async def until(self, check: str, timeout_s: float = 5.0) -> None:
        await wait_for(lambda: eval(check, {"r": self}), timeout_s, check, state=self.status)


@pytest.fixture
async def running(broker_url: str) -> AsyncIterator[Running]:
    site = make_site(broker_url, "custom", status_enabled=True, status_interval_s=0.2)
    site = site.model_copy(
        update={"control": site.control.model_copy(update={"period_s": PERIOD_S})}
    )
    clock = SystemClock()
    fakes = FakeSite(site, clock, {9: SUNNY, 10: QUIET}, actuator_lag_s=0.3)
    engine = ControlEngine(
        site,
        fakes.devices(),
        clock,
        MemoryStateStore(),
        lambda _: None,
        tuning=ControlTuning(actuator_lag_s=0.3),
    )
    controller = EngineController(site, engine)
    store = MemoryStrategyStore()
    await store.open()
    service = CommandService(site=site, store=store, live=controller)
    await service.load()
    agent = EdgeAgent(site, service, controller=controller)
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    await asyncio.wait_for(agent.connected.wait(), 10)
    yield Running(site, engine, agent)
    stop.set()
    await asyncio.wait_for(task, 10)


async def test_enable_acts_and_disable_stops_on_next_cycle(running: Running) -> None:
    """D15 via MQTT: PV anti-backflow created -> PV curtailed, import held at X; disabled by an
    update -> the bound is gone on the next cycle and PV is released."""
    r = running
    await r.until("r.meter9().grid_power_kw is not None and r.meter9().grid_power_kw < -100")
    async with StrategyClient(r.site.mqtt.url, scheme_of(r.site), r.site.device.uid) as ems:
        created = await ems.create(
            {
                **CREATE,
                "device_type": 3,
                "over_demand_status": 2,
                "streaming_condition": BASELINE_KW,
            }
        )
        assert created.code == 200
        await r.until(
            f"r.meter9().floor_kw is not None and r.meter9().grid_power_kw >= {BASELINE_KW - 0.5}"
        )
        listed = (await ems.sync()).data[0]
        assert [d.running_status for d in listed.devices] == [1]
        assert listed.current_over_demand_condition == 500
        cycle = r.status().cycle
        assert created.data is not None
        result = await ems.update({"id": created.data.id, "streaming_status": 2})
        assert result.code == 200
        await r.until(f"r.status().cycle >= {cycle} + 1 and r.meter9().floor_kw is None")
        assert r.status().cycle <= cycle + 3, "the disable took effect within the next cycles"
        await r.until("r.meter9().grid_power_kw < -50")  # PV released: export again


async def test_status_topic_carries_live_state(running: Running) -> None:
    """The extension topic publishes grid, per phase, demand, target, devices, fail-safe."""
    r = running
    topic = build_topic(scheme_of(r.site), r.site.device.uid, "status", "post")
    host, port = r.site.mqtt.url.removeprefix("mqtt://").split(":")
    async with aiomqtt.Client(host, int(port), identifier=f"status-{r.site.device.uid}") as c:
        await c.subscribe(topic)
        async for message in c.messages:
            if message.topic.value != topic:
                continue
            assert isinstance(message.payload, bytes)
            status = json.loads(message.payload)
            break
    assert status["type"] == "streaming_overdemand_status"
    meter = next(m for m in status["meters"] if m["meter_id"] == 9)
    assert len(meter["phase_power_kw"]) == 3
    assert {"demand_kw", "target_kw", "floor_kw", "ceiling_kw", "failsafe"} <= set(meter)
    assert {d["kind"] for d in status["devices"]} == {"storage", "pv", "charger"}
    assert status["agent"]["state"] == "serving"
    assert set(status) == {"type", "device_uid", "timestamp", "agent", *ControlStatus.model_fields}


async def test_status_json_is_the_snapshot_as_model_dump_gives_it(running: Running) -> None:
    """The status payload is spliced from pydantic's own JSON (no model_dump + json.dumps):
    the same document as before, field for field."""
    r = running
    await r.until("r.status().cycle >= 2")
    controller = EngineController(r.site, r.engine)
    document = json.loads(controller.status_json())
    expected = {
        "type": "streaming_overdemand_status",
        "device_uid": r.site.device.uid,
        "timestamp": document["timestamp"],
        **r.engine.status().model_dump(mode="json"),
    }
    assert document == expected  # why: no await between the two, so one snapshot
