"""The files under examples/ that are not code: a user register map, the systemd unit."""

from __future__ import annotations

import configparser
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gridguard.cli import app
from gridguard.devices.factory import build_site_devices, close_site_devices
from gridguard.devices.modbus.regmap import load_map
from gridguard.sim.servers import SiteServers
from gridguard.site.config import parse_site_config

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).parents[1] / "examples"


def sunspec_site() -> dict[str, object]:
    link = {"host": "127.0.0.1", "port": 0, "timeout_s": 0.5}
    return {
        "device": {"uid": "gg-test-sunspec"},
        "site": {"maps_dir": str(EXAMPLES / "maps")},
        "meters": [{"id": 1, "modbus": link}],
        "pv": [
            {"id": 5, "meter_id": 1, "rated_kw": 50, "model": "sunspec-inverter", "modbus": link}
        ],
    }


async def test_sunspec_map_found_through_maps_dir_read_and_written() -> None:
    """site.maps_dir reaches the simulator and the drivers: the worked example's map serves
    and reads W at 40083 in kW, and a limit lands in WMaxLimPct at 40232 in 0.01 %."""
    regmap = load_map("sunspec-inverter", EXAMPLES / "maps")
    assert regmap.kind == "pv"
    servers = SiteServers(parse_site_config(sunspec_site()))
    await servers.start()
    devices = build_site_devices(servers.bound())
    try:
        servers.bank("pv", 5).set("power_kw", 12.5)
        reading = await devices.pv[5].read()
        assert reading.online
        assert reading.power_kw == 12.5
        await devices.pv[5].write_limit_kw(25.0)
        assert servers.bank("pv", 5).tables["holding"][40232] == 5000  # 50.00 % of 50 kW
    finally:
        close_site_devices(devices)
        await servers.stop()


def test_systemd_unit_runs_the_agent_with_options_that_exist() -> None:
    """The unit restarts the agent, stops it by SIGTERM, and its command line is one the CLI
    accepts (every option of ExecStart is in `edge run --help`)."""
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(EXAMPLES / "gridguard-edge.service", encoding="utf-8")
    service = unit["Service"]
    assert service["Restart"] == "always"
    assert service["KillSignal"] == "SIGTERM"
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    argv = shlex.split(service["ExecStart"])
    assert argv[0].endswith("/gridguard")
    assert argv[1:3] == ["edge", "run"]
    help_text = CliRunner().invoke(app, ["edge", "run", "--help"]).output
    for option in (a for a in argv if a.startswith("--")):
        assert option in help_text, option
