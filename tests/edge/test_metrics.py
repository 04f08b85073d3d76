"""Prometheus metrics: the recorder's arithmetic, /metrics scraped from a running agent, and
the Grafana dashboard built on them."""

from __future__ import annotations

import asyncio
import json
import math
import re
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from gridguard.client import StrategyClient
from gridguard.control.status import ControlStatus, DeviceStatus, MeterStatus
from gridguard.edge.metrics import MetricsRecorder
from gridguard.edge.run import MetricsEndpoint, run_agent
from gridguard.ports import free_port
from gridguard.protocol.topics import TopicScheme
from gridguard.sim.runner import SiteSimulator
from gridguard.testing.examples import CREATE_DATA
from gridguard.testing.mosquitto import port_open
from tests.edge.conftest import EXAMPLE, missing_service

pytestmark = pytest.mark.integration

DASHBOARD = Path(__file__).parents[2] / "examples" / "grafana-dashboard.json"
T0 = datetime(2026, 7, 1, 12, tzinfo=UTC)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    """Every sample of an exposition, keyed by (name, sorted labels)."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def status(at: datetime, grid_kw: float | None, target_kw: float | None = None) -> ControlStatus:
    meter = MeterStatus(
        meter_id=9,
        grid_power_kw=grid_kw,
        demand_kw=80.0,
        dynamic_demand_kw=95,
        target_kw=target_kw,
        shave_kw=None,
        floor_kw=12.0,
        ceiling_kw=None,
        failsafe=grid_kw is None,
    )
    storage = DeviceStatus(
        kind="storage", id=3, meter_id=9, online=True, power_kw=-4.0, setpoint_kw=-4.0, soc_pct=55
    )
    return ControlStatus(at=at, cycle=1, meters=(meter,), devices=(storage,))


def test_recorder_counts_backflow_time_and_leaves_unknowns_nan() -> None:
    """Two exporting cycles 1 s apart: 1 s of backflow; a gap of minutes is not counted; no
    target is NaN (a gap in a graph), not 0; a silent meter is fail-safe 1."""
    recorder = MetricsRecorder()
    recorder.cycle(0.004, status(T0, -5.0))
    recorder.cycle(0.006, status(T0 + timedelta(seconds=1), -3.0))
    recorder.cycle(0.005, status(T0 + timedelta(minutes=5), -3.0))
    recorder.cycle(0.005, status(T0 + timedelta(minutes=5, seconds=1), None))
    got = samples(generate_latest(recorder.registry).decode())
    meter = (("meter", "9"),)
    assert got["gridguard_backflow_seconds_total", meter] == pytest.approx(1.0)
    assert math.isnan(got["gridguard_target_kw", meter])
    assert math.isnan(got["gridguard_grid_power_kw", meter])
    assert got["gridguard_failsafe", meter] == 1
    assert got["gridguard_control_cycle_seconds_count", ()] == 4
    assert got["gridguard_device_setpoint_kw", (("id", "3"), ("kind", "storage"))] == -4.0
    assert got["gridguard_storage_soc_pct", (("id", "3"),)] == 55


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return samples(response.read().decode())


async def scrape_until(port: int, ready: object, timeout_s: float = 20) -> Samples:
    """Scrape until ``ready(samples)`` holds (the agent's cycles run in real time)."""
    async with asyncio.timeout(timeout_s):
        while True:
            got = await asyncio.to_thread(scrape, port)
            if ready(got):  # type: ignore[operator]
                return got
            await asyncio.sleep(0.2)


async def test_metrics_scraped_from_a_running_agent(tmp_path: Path) -> None:
    """`edge run --metrics-port` on the simulated site: a create counted by op and code, the
    control cycles timed, grid power and device state exported."""
    if not port_open(1883):
        missing_service("no Mosquitto on 127.0.0.1:1883")
    from gridguard.demo.run import DEMO_START_S, with_ports  # noqa: PLC0415
    from gridguard.site.config import load_site_config  # noqa: PLC0415

    sim = SiteSimulator(with_ports(load_site_config(EXAMPLE), None), start_s=DEMO_START_S)
    await sim.start()
    uid, prefix = f"gg-metrics-{uuid.uuid4().hex[:8]}", "v1/test-metrics"
    site = sim.servers.bound().model_copy(
        update={
            "device": sim.site.device.model_copy(update={"uid": uid}),
            "mqtt": sim.site.mqtt.model_copy(
                update={"url": "mqtt://127.0.0.1:1883", "prefix": prefix, "status_enabled": False}
            ),
            "store": sim.site.store.model_copy(update={"url": f"sqlite:///{tmp_path / 'e.db'}"}),
        }
    )
    port, stop = free_port(), asyncio.Event()
    agent = asyncio.create_task(run_agent(site, stop, metrics=MetricsEndpoint(port)))
    try:
        async with StrategyClient(
            "mqtt://127.0.0.1:1883", TopicScheme("custom", prefix=prefix), uid
        ) as ems:
            async with asyncio.timeout(20):
                await anext(ems.lists())
            assert (await ems.create(CREATE_DATA)).code == 200
        created = ("gridguard_commands_total", (("code", "200"), ("op", "create")))
        got = await scrape_until(
            port,
            lambda s: (
                s.get(created) == 1
                and s.get(("gridguard_control_cycle_seconds_count", ()), 0) >= 3
                and ("gridguard_floor_kw", (("meter", "9"),)) in s
                and not math.isnan(s["gridguard_floor_kw", (("meter", "9"),)])
            ),
        )
    finally:
        stop.set()
        await asyncio.wait_for(agent, 20)
        await sim.stop()
    assert got["gridguard_command_seconds_count", (("op", "create"),)] == 1
    assert got["gridguard_device_online", (("id", "3"), ("kind", "storage"))] == 1
    assert not math.isnan(got["gridguard_grid_power_kw", (("meter", "9"),)])
    assert got["gridguard_failsafe", (("meter", "9"),)] == 0


@dataclass(frozen=True)
class Answered:
    op: str
    code: int


def exposed_names() -> set[str]:
    recorder = MetricsRecorder()
    recorder.cycle(0.01, status(T0, -1.0, target_kw=90))
    recorder.answered([Answered("create", 200)], 0.001)
    return {name for name, _ in samples(generate_latest(recorder.registry).decode())}


def test_grafana_dashboard_is_built_on_the_exported_metrics() -> None:
    """The dashboard JSON loads; panels have unique ids, fit the 24-column grid without
    overlapping; every query names only metrics the agent exports and defined variables."""
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["uid"] == "gridguard-edge"
    assert dashboard["schemaVersion"] >= 36
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        mine = {(pos["x"] + i, pos["y"] + j) for i in range(pos["w"]) for j in range(pos["h"])}
        assert not cells & mine, f"{panel['title']} overlaps another panel"
        cells |= mine
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    names, exported = set(), exposed_names()
    for panel in panels:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            names |= set(re.findall(r"gridguard_[a-z_]+", target["expr"]))
            used = set(re.findall(r"\$\{?(\w+)", target["expr"] + json.dumps(panel["datasource"])))
            assert used <= variables, (panel["title"], used - variables)
    assert names, "no query"
    assert names <= exported, names - exported
    assert {"gridguard_backflow_seconds_total", "gridguard_control_cycle_seconds_bucket"} <= names
