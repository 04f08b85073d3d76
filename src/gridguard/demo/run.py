"""``gridguard demo``: broker, simulated site and edge agent on this machine, one command.

Everything binds to 127.0.0.1. The broker is the embedded amqtt one (on 1883 if free, else a
free port); the simulator serves the site file's Modbus endpoints with a sunny midday, so
without control the site would export; data goes to ``./gridguard-data/``. Ctrl-C stops all.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import uuid
from collections.abc import Callable
from pathlib import Path

import aiomqtt

from gridguard.demo.broker import EmbeddedBroker
from gridguard.edge.run import run_agent
from gridguard.ports import free_port, port_open
from gridguard.protocol.topics import build_topic
from gridguard.sim.runner import SiteSimulator
from gridguard.site.config import SiteConfig

DEMO_START_S = 11.5 * 3600  # 11:30: full sun, PV above the site's load


def demo_site(site: SiteConfig, broker_port: int, data_dir: Path) -> SiteConfig:
    """The site file with the demo's broker, store and a 2 s status period."""
    mqtt = site.mqtt.model_copy(
        update={
            "url": f"mqtt://127.0.0.1:{broker_port}",
            "status_interval_s": 2.0,
            "status_enabled": True,
        }
    )
    store = site.store.model_copy(update={"url": f"sqlite:///{data_dir / 'edge.db'}"})
    return site.model_copy(update={"mqtt": mqtt, "store": store})


def instructions(site: SiteConfig, port: int) -> list[str]:
    """What runs where, and commands to paste into another terminal."""
    from gridguard.edge.agent import scheme_of  # noqa: PLC0415

    scheme, uid = scheme_of(site), site.device.uid
    create = build_topic(scheme, uid, "create", "command")
    results = f"{scheme.prefix_path}/{uid}/streaming_overdemand/+/result"
    status = build_topic(scheme, uid, "status", "post")
    meter = site.meters[0].id if site.meters else 9
    payload = (
        '{"mid": "3e681859-6917-4b9a-9afd-3f162cd185bd", "type": "streaming_overdemand_create", '
        f'"device_uid": "{uid}", "timestamp": 1695265371000, "data": {{"ele_meter_id": {meter}, '
        '"streaming_status": 1, "streaming_condition": 10, '
        '"individual_phase_streaming_status": 2, "over_demand_status": 2, '
        '"over_demand_condition": [500,500,500,500,500,500,500,500,500,500,500,500], '
        '"dynamic_demand_percentage": 90}}'
    )
    return [
        "",
        "Watch results and live status (another terminal):",
        f"  mosquitto_sub -h 127.0.0.1 -p {port} -v -t '{results}' -t '{status}'",
        "",
        f"Create an anti-backflow strategy on meter {meter} (baseline 10 kW import):",
        f"  mosquitto_pub -h 127.0.0.1 -p {port} -q 1 -t '{create}' -m '{payload}'",
        "",
        "Stored strategies, offline:  gridguard edge strategies --config <site file>",
        "Ctrl-C stops everything.",
    ]


async def wait_for_agent(site: SiteConfig, port: int, timeout_s: float = 30.0) -> None:
    """Return once the agent has announced itself (its retained list/post is on the broker)."""
    from gridguard.edge.agent import scheme_of  # noqa: PLC0415

    topic = build_topic(scheme_of(site), site.device.uid, "list", "post")
    client_id = f"gridguard-demo-{uuid.uuid4().hex[:8]}"  # amqtt reuses generated ids
    async with (
        asyncio.timeout(timeout_s),
        aiomqtt.Client("127.0.0.1", port, identifier=client_id) as client,
    ):
        await client.subscribe(topic, qos=1)
        async for _ in client.messages:
            return


async def run_demo(site: SiteConfig, data_dir: Path, out: Callable[[str], None]) -> None:
    """Run broker, simulator and agent until SIGINT/SIGTERM (``data_dir`` must exist)."""
    port = 1883 if not port_open(1883) else free_port()
    site = demo_site(site, port, data_dir)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    simulator = SiteSimulator(site, start_s=DEMO_START_S)
    async with EmbeddedBroker(port):
        out(f"MQTT broker (embedded amqtt)   mqtt://127.0.0.1:{port}")
        await simulator.start()
        try:
            for line in simulator.servers.describe():
                out(f"simulated device              {line}")
            async with asyncio.TaskGroup() as group:
                steps = group.create_task(simulator.run(speed=1.0, step_s=0.1), name="sim")
                group.create_task(run_agent(site, stop), name="edge-agent")
                await wait_for_agent(site, port)
                out(
                    f"edge agent                    device {site.device.uid}, "
                    f"store {site.store.url}: connected"
                )
                for line in instructions(site, port):
                    out(line)
                await stop.wait()
                steps.cancel()
        finally:
            await simulator.stop()
    out("demo stopped: agent, simulator and broker closed")
