"""The site simulator: loopback only, daily profile, meter demand, closed loop over Modbus."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self
from zoneinfo import ZoneInfo

import pytest

from gridguard.clock import FakeClock
from gridguard.control.demand import DemandMeter
from gridguard.devices.factory import build_site_devices, close_site_devices
from gridguard.sim.runner import Profile, SiteSimulator, World, daily_profile
from gridguard.sim.servers import SimulatorError, SiteServers
from gridguard.site.config import parse_site_config
from tests.devices.conftest import site_dict


@pytest.mark.unit
@pytest.mark.parametrize(
    "host",
    ["192.168.1.10", "0.0.0.0", "example.com"],
    ids=["lan", "any", "name"],
)
def test_refuses_hosts_that_are_not_loopback(host: str) -> None:
    """The simulator never listens beyond loopback: a spec-style LAN host is refused."""
    data = site_dict()
    data["pv"][0]["modbus"]["host"] = host
    with pytest.raises(SimulatorError, match="loopback only"):
        SiteServers(parse_site_config(data))


@pytest.mark.unit
def test_refuses_rtu_devices() -> None:
    """Serial devices cannot be simulated over TCP; the start says which one."""
    data = site_dict()
    data["storage"][0]["modbus"] = {"transport": "rtu", "serial_port": "/dev/ttyS1"}
    with pytest.raises(SimulatorError, match="storage id 3: the simulator serves TCP only"):
        SiteServers(parse_site_config(data))


PROFILE_CASES = [
    # why: night: no sun, base load, no vehicles
    (3.0, World(load_kw=0.4 * 280.0, pv_available_kw=0.0, vehicles_plugged=False)),
    # why: solar noon: PV at 85 % of rating
    (
        12.0,
        World(
            load_kw=280.0 * (0.4 + 0.6 * 0.9749279), pv_available_kw=340.0, vehicles_plugged=True
        ),
    ),
    # why: evening: vehicles gone, sun down
    (
        19.0,
        World(load_kw=280.0 * (0.4 + 0.6 * 0.2225209), pv_available_kw=0.0, vehicles_plugged=False),
    ),
]


@pytest.mark.unit
@pytest.mark.parametrize(("hour", "want"), PROFILE_CASES, ids=["night", "noon", "evening"])
def test_daily_profile(hour: float, want: World) -> None:
    """The built-in day for 400 kW of PV (load scale 280 kW), also on the next day."""
    world = daily_profile(400.0)
    for day in (0, 1):
        got = world(day * 86400.0 + hour * 3600.0)
        assert got.load_kw == pytest.approx(want.load_kw)
        assert got.pv_available_kw == pytest.approx(want.pv_available_kw)
        assert got.vehicles_plugged == want.vehicles_plugged


@pytest.mark.unit
def test_meter_demand_is_a_15_minute_average() -> None:
    """Forward demand averages the last 15 minutes; the month's maximum is kept."""
    meter = DemandMeter(window_s=900, step_s=1, zone=ZoneInfo("UTC"))  # as the simulator's

    def add(second: int, kw: float) -> float:
        meter.add(kw, 1.0, float(second))
        return meter.running_kw

    demand = 0.0
    for second in range(1, 1201):  # 20 min at 100 kW
        demand = add(second, 100.0)
    assert demand == pytest.approx(100.0)
    for second in range(1201, 1201 + 450):  # 7.5 min at 0 kW
        demand = add(second, 0.0)
    assert demand == pytest.approx(50.0, abs=0.2)
    for second in range(1651, 1651 + 900):
        demand = add(second, 0.0)
    assert demand == pytest.approx(0.0)
    assert meter.month_max_kw == pytest.approx(100.0)


def _world(load_kw: float = 300.0, pv_kw: float = 0.0, plugged: bool = False) -> Profile:
    return lambda _t: World(load_kw=load_kw, pv_available_kw=pv_kw, vehicles_plugged=plugged)


class Running:
    """A simulator with its servers up and the agent's drivers pointed at them."""

    def __init__(self, data: dict[str, Any], world: Profile) -> None:
        self.sim = SiteSimulator(parse_site_config(data), profile=world)
        self.clock = FakeClock()

    async def __aenter__(self) -> Self:
        await self.sim.start()
        self.devices = build_site_devices(self.sim.servers.bound(), clock=self.clock)
        return self

    async def __aexit__(self, *exc: object) -> None:
        close_site_devices(self.devices)
        await self.sim.stop()

    def settle(self, seconds: float = 10.0, dt_s: float = 0.5) -> None:
        for _ in range(int(seconds / dt_s)):
            self.sim.advance(dt_s)


@pytest.mark.integration
async def test_meter_reads_the_plant_through_pt_ct_and_direction() -> None:
    """What the agent reads equals the plant's true grid power, whatever PT, CT, direction."""
    data = site_dict(pt=10, ct=20, direction=-1)
    async with Running(data, _world(load_kw=300.0)) as run:
        run.settle()
        reading = await run.devices.meters[9].read()
        truth = run.sim.plants[0].state
    assert reading.valid
    # why: resolution is 1 W secondary = 0.2 kW primary per phase
    assert reading.grid_power_kw == pytest.approx(truth.grid_power_kw, abs=0.5)
    assert reading.phase_power_kw == pytest.approx(truth.grid_phase_kw, abs=0.3)
    assert reading.grid_power_kw == pytest.approx(300.0, abs=0.5)


@pytest.mark.integration
async def test_closed_loop_storage_setpoint_moves_the_meter() -> None:
    """Discharging 100 kW through the PCS driver lowers grid import by 100 kW."""
    async with Running(site_dict(), _world(load_kw=300.0)) as run:
        run.settle()
        before = await run.devices.meters[9].read()
        await run.devices.storage[3].write_power_kw(100.0)
        run.settle(seconds=20.0)
        after = await run.devices.meters[9].read()
        storage = await run.devices.storage[3].read()
    assert storage.power_kw == pytest.approx(100.0, abs=0.5)
    assert before.grid_power_kw - after.grid_power_kw == pytest.approx(100.0, abs=0.5)
    assert storage.soc_pct < 52.5  # why: it started mid-window (10..95 %) and discharged


@pytest.mark.integration
async def test_closed_loop_pv_limit_stops_backflow() -> None:
    """Sunny, light load: export; limiting PV to the load brings the meter back to ~0."""
    async with Running(site_dict(), _world(load_kw=100.0, pv_kw=300.0)) as run:
        run.settle()
        exporting = await run.devices.meters[9].read()
        await run.devices.pv[5].write_limit_kw(100.0)
        run.settle(seconds=20.0)
        curtailed = await run.devices.meters[9].read()
        pv = await run.devices.pv[5].read()
    assert exporting.grid_power_kw == pytest.approx(-200.0, abs=0.5)
    assert curtailed.grid_power_kw == pytest.approx(0.0, abs=0.5)
    assert (pv.power_kw, pv.limit_kw) == pytest.approx((100.0, 100.0), abs=0.1)


@pytest.mark.integration
async def test_closed_loop_charger_limit_and_pause() -> None:
    """A pile follows its limit; below its minimum it pauses, yet the vehicle stays connected."""
    async with Running(site_dict(), _world(load_kw=50.0, plugged=True)) as run:
        run.settle()
        pile = run.devices.chargers[6]
        assert (await pile.read()).power_kw == pytest.approx(120.0, abs=0.1)
        await pile.write_limit_kw(60.0)
        run.settle(seconds=20.0)
        limited = await pile.read()
        await pile.write_limit_kw(10.0)  # why: below min_kw 20 pauses the pile
        run.settle(seconds=20.0)
        paused = await pile.read()
    assert (limited.power_kw, limited.limit_kw) == pytest.approx((60.0, 60.0), abs=0.1)
    assert paused.power_kw == pytest.approx(0.0, abs=0.1)
    assert paused.connected


@pytest.mark.integration
async def test_one_device_server_stopped_and_restarted() -> None:
    """The runner stops one device's server (offline for the agent) and restarts it."""
    async with Running(site_dict(), _world()) as run:
        await run.sim.endpoint("pv", 5).stop()
        assert not (await run.devices.pv[5].read()).online
        assert (await run.devices.meters[9].read()).valid
        await run.sim.endpoint("pv", 5).start()
        run.clock.advance(60.0)
        assert (await run.devices.pv[5].read()).online


@pytest.mark.unit
def test_describe_names_every_endpoint() -> None:
    """The start-up listing says what is served where."""
    sim = SiteSimulator(parse_site_config(site_dict()), profile=_world())
    lines = sim.servers.describe()
    assert len(lines) == 5
    assert lines[0].startswith("meter 9: modbus tcp 127.0.0.1:0 unit 1")


@pytest.mark.unit
def test_cli_refuses_a_lan_host_with_exit_code_2(tmp_path: Path) -> None:
    """`gridguard sim run` on a config with a LAN host says why and exits 2."""
    from typer.testing import CliRunner  # noqa: PLC0415

    from gridguard.cli import app  # noqa: PLC0415

    config = tmp_path / "site.toml"
    config.write_text(
        '[device]\nuid = "x"\n[[meters]]\nid = 1\nmodbus = { host = "192.168.1.10", port = 502 }\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["sim", "run", "--config", str(config)])
    assert result.exit_code == 2
    assert "loopback only" in result.output


@pytest.mark.integration
async def test_scenario_trace_drives_the_plant(tmp_path: Path) -> None:
    """A scenario's load, PV (interpolated) and vehicle demand reach the meter and the piles."""
    from gridguard.sim.runner import scenario_profile  # noqa: PLC0415

    (tmp_path / "day.csv").write_text(
        "seconds,load_kw,pv_kw,charger_kw\n0,300,0,90\n60,300,120,90\n120,150,120,0\n",
        encoding="utf-8",
    )
    (tmp_path / "day.toml").write_text(
        'trace = "day.csv"\nstart = "2024-06-12T10:00:00+08:00"\n', encoding="utf-8"
    )
    world = scenario_profile(tmp_path / "day.toml")
    # why: PV interpolates between samples, load is held, vehicles share the trace's demand
    assert world(30.0) == World(
        300.0, 60.0, vehicles_plugged=True, load_phase_kw=(100.0, 100.0, 100.0), charger_kw=90.0
    )
    async with Running(site_dict(), world) as run:
        run.settle(seconds=30.0)  # t = 30 s
        meter = await run.devices.meters[9].read()
        piles = [await p.read() for p in run.devices.chargers.values()]
    # why: load 300 - PV 60 + piles 45 + 45 (90 kW shared over two piles, each under rating)
    assert [p.power_kw for p in piles] == pytest.approx([45.0, 45.0], abs=0.1)
    # why: PV ramps 2 kW/s and follows with a 1 s lag, so it trails the trace by ~2 kW
    assert meter.grid_power_kw == pytest.approx(300.0 - 58.0 + 90.0, abs=1.0)


@pytest.mark.unit
def test_unreadable_scenario_is_refused_naming_the_file(tmp_path: Path) -> None:
    """A scenario that cannot be read stops the start with the file named."""
    from gridguard.sim.runner import scenario_profile  # noqa: PLC0415

    with pytest.raises(SimulatorError, match=r"missing\.toml"):
        scenario_profile(tmp_path / "missing.toml")
