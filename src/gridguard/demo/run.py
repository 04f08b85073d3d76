"""``gridguard demo``: broker, simulated site, edge agent, platform and fleet, one command.

Everything binds to 127.0.0.1, on ports of its own: the embedded amqtt broker and every Modbus
endpoint get free ports (or consecutive ports from ``--port-base``), written into the site
configuration in memory, so a second demo, or an agent run on ``examples/edge.toml``, never
reaches this demo's simulator. The site is the one shipped in the package (``site.toml``) unless
a file is given; the simulator serves it with a sunny midday, so without control the site would
export; data goes to ``./gridguard-data/``. The platform (SQLite ``platform.db`` there, HTTP on
127.0.0.1) serves the dashboard over the same broker, where the fleet simulator adds a few
hundred simulated EMS beside the real site (``gridguard.demo.dashboard``). Ctrl-C stops all.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import uuid
from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import Any

import aiomqtt

from gridguard.demo.broker import BrokerProcess, BrokerStartError
from gridguard.demo.dashboard import (
    DEFAULT_FLEET,
    fleet_config,
    login_block,
    new_demo_password,
    platform_settings,
    reset_demo_user,
    show_progress,
)
from gridguard.edge.run import run_agent
from gridguard.platform.run import Running, StartError, run_platform
from gridguard.platform.settings import Settings
from gridguard.ports import free_port, port_open
from gridguard.protocol.topics import build_topic
from gridguard.sim.fleet import Fleet
from gridguard.sim.runner import SiteSimulator
from gridguard.sim.servers import SECTIONS, SimulatorError
from gridguard.site.config import ModbusLink, SiteConfig, parse_site_config

DEMO_START_S = 11.5 * 3600  # 11:30: full sun, PV above the site's load
STOP_GRACE_S = 10.0
DEMO_MID = "3e681859-6917-4b9a-9afd-3f162cd185bd"


def packaged_site() -> SiteConfig:
    """The demo's own site (``gridguard/demo/site.toml``, shipped as package data)."""
    import tomllib  # noqa: PLC0415

    text = resources.files("gridguard.demo").joinpath("site.toml").read_text(encoding="utf-8")
    return parse_site_config(tomllib.loads(text), "gridguard/demo/site.toml")


def create_data(meter_id: int) -> dict[str, Any]:
    """The demo's create: anti-backflow with a 10 kW import baseline on ``meter_id``."""
    return {
        "ele_meter_id": meter_id,
        "streaming_status": 1,
        "streaming_condition": 10,
        "individual_phase_streaming_status": 2,
        "over_demand_status": 2,
        "over_demand_condition": [500] * 12,
        "dynamic_demand_percentage": 90,
    }


def create_payload(uid: str, meter_id: int) -> str:
    """The create command the demo prints (and the README shows), as one JSON line."""
    command = {
        "mid": DEMO_MID,
        "type": "streaming_overdemand_create",
        "device_uid": uid,
        "timestamp": 1695265371000,
        "data": create_data(meter_id),
    }
    return json.dumps(command, ensure_ascii=False, separators=(", ", ": "))


def with_ports(site: SiteConfig, port_base: int | None) -> SiteConfig:
    """Every TCP Modbus port of the site replaced: 0 (the simulator binds a free port for each
    device) or, from ``port_base + 1``, one port per distinct host:port of the file."""
    numbered: dict[tuple[str, int], int] = {}

    def port_of(link: ModbusLink) -> int:
        if port_base is None:
            return 0
        return numbered.setdefault((link.host, link.port), port_base + 1 + len(numbered))

    update: dict[str, Any] = {}
    for section in SECTIONS:
        update[section] = [
            dev.model_copy(
                update={"modbus": dev.modbus.model_copy(update={"port": port_of(dev.modbus)})}
            )
            if dev.modbus.transport == "tcp"
            else dev
            for dev in getattr(site, section)
        ]
    return site.model_copy(update=update)


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
    payload = create_payload(uid, meter)
    return [
        "",
        "Watch results and live status (another terminal):",
        f"  mosquitto_sub -h 127.0.0.1 -p {port} -v -t '{results}' -t '{status}'",
        "",
        f"Create an anti-backflow strategy on meter {meter} (baseline 10 kW import):",
        f"  mosquitto_pub -h 127.0.0.1 -p {port} -q 1 -t '{create}' -m '{payload}'",
        "",
        f"The agent stores its strategies in {site.store.url}",
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


class DemoError(Exception):
    """The demo cannot start (a port taken); the message says which and what to do."""


class Interrupted(Exception):  # noqa: N818 - a stop, not an error
    """Ctrl-C (or SIGTERM) came while the demo was still starting."""


async def unless_stopped(waiting: Awaitable[None], stop: asyncio.Event) -> None:
    """Await ``waiting``; Interrupted (and ``waiting`` cancelled) if ``stop`` is set first."""
    task = asyncio.ensure_future(waiting)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        raise Interrupted
    task.result()


def broker_port(port_base: int | None) -> int:
    """``port_base`` itself, if free, or a free port."""
    if port_base is None:
        return free_port()
    if port_open(port_base):
        raise DemoError(f"port {port_base} is taken: pick another --port-base")
    return port_base


def http_port(platform_port: int | None) -> int:
    """``platform_port`` itself, if free, or 0 (the platform binds a free port)."""
    if platform_port is None:
        return 0
    if port_open(platform_port):
        raise DemoError(f"port {platform_port} is taken: pick another --platform-port")
    return platform_port


async def wait_for_platform(running: Running, task: asyncio.Task[None]) -> None:
    """Return once the platform serves HTTP and is subscribed; DemoError if it ended first."""
    ready = asyncio.ensure_future(running.ready.wait())
    try:
        await asyncio.wait({ready, task}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
    finally:
        ready.cancel()
    if not running.ready.is_set():
        raise DemoError("the platform did not start (see the log above)")


async def start_simulator(site: SiteConfig, port_base: int | None) -> SiteSimulator:
    """The site's simulator, listening on its own ports (DemoError if one is taken)."""
    simulator = SiteSimulator(with_ports(site, port_base), start_s=DEMO_START_S)
    try:
        await simulator.start()
    except SimulatorError as exc:
        await simulator.stop()
        raise DemoError(f"{exc}: pick another --port-base") from exc
    return simulator


async def run_demo(
    site: SiteConfig,
    data_dir: Path,
    out: Callable[[str], None],
    *,
    port_base: int | None = None,
    platform_port: int | None = None,
    fleet_count: int = DEFAULT_FLEET,
) -> None:
    """Run broker, simulator, agent, platform and fleet until SIGINT/SIGTERM (``data_dir`` must
    exist; ``fleet_count`` 0: no fleet).

    Raises DemoError when a port is taken (with ``port_base`` or ``platform_port``)."""
    port = broker_port(port_base)
    listen_port = http_port(platform_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    simulator = await start_simulator(site, port_base)
    site = demo_site(simulator.servers.bound(), port, data_dir)
    settings = platform_settings(site, port, data_dir, listen_port)
    try:
        await _run_all(
            site, simulator, settings, port=port, stop=stop, out=out, fleet_count=fleet_count
        )
    except BrokerStartError as exc:
        raise DemoError(f"{exc}: pick another --port-base") from None
    except BaseExceptionGroup as group:
        _, rest = group.split(Interrupted)
        if rest is not None:
            failed = rest.subgroup((DemoError, StartError, BrokerStartError))
            if failed is None:
                raise
            raise DemoError(str(failed.exceptions[0])) from None
    finally:
        await simulator.stop()
    out("demo stopped: fleet, platform, agent, simulator and broker closed")


async def _run_all(
    site: SiteConfig,
    simulator: SiteSimulator,
    settings: Settings,
    *,
    port: int,
    stop: asyncio.Event,
    out: Callable[[str], None],
    fleet_count: int,
) -> None:
    """The broker, then simulator and agent, the platform and its demo login, the fleet."""
    async with BrokerProcess(port):
        out(f"MQTT broker (embedded amqtt)   mqtt://127.0.0.1:{port}, in a process of its own")
        for line in simulator.servers.describe():
            out(f"simulated device              {line}")
        async with asyncio.TaskGroup() as group:
            steps = group.create_task(simulator.run(speed=1.0, step_s=0.1), name="sim")
            parts = [group.create_task(run_agent(site, stop), name="edge agent")]
            await unless_stopped(wait_for_agent(site, port), stop)
            out(
                f"edge agent                    device {site.device.uid}, "
                f"store {site.store.url}: connected"
            )
            running = Running()
            platform = group.create_task(
                run_platform(settings, stop, running=running), name="platform"
            )
            parts.append(platform)
            await unless_stopped(wait_for_platform(running, platform), stop)
            assert running.services is not None
            password = new_demo_password()
            user = await reset_demo_user(running.services.db, password)
            out(f"platform (dashboard, REST)    {running.url}, database {settings.db_url}")
            if fleet_count > 0:
                fleet = Fleet(fleet_config(fleet_count, port), echo=lambda _: None)
                parts.append(group.create_task(fleet.run(stop), name="fleet simulator"))
                await show_progress(fleet, stop, out)
                if stop.is_set():
                    raise Interrupted
            for line in [*instructions(site, port), *login_block(running.url, user, password)]:
                out(line)
            out("Ctrl-C stops everything.")
            await stop.wait()
            steps.cancel()
            await stop_within(parts, STOP_GRACE_S, out)


async def stop_within(
    parts: list[asyncio.Task[None]], grace_s: float, out: Callable[[str], None]
) -> None:
    """Give the parts (already told to stop) ``grace_s`` to end; cancel those still running,
    saying which (an overloaded broker can keep a fleet's last connects waiting)."""
    _, pending = await asyncio.wait(parts, timeout=grace_s)
    for task in pending:
        out(f"{task.get_name()}: still stopping after {grace_s:g} s; cancelled")
        task.cancel()
