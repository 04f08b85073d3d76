"""`gridguard devices probe`: every device read once against the simulator, errors in words."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
import tomli_w

from gridguard.devices.factory import build_site_devices, close_site_devices
from gridguard.devices.probe import ProbeRow, error_in_words, probe, probe_rows
from gridguard.site.config import ModbusLink, parse_site_config
from tests.devices.conftest import ServedSite, site_dict

pytestmark = pytest.mark.integration


def by_key(rows: list[ProbeRow]) -> dict[tuple[str, int], ProbeRow]:
    return {(r.kind, r.device_id): r for r in rows}


async def test_every_device_read_once_with_units(site: ServedSite) -> None:
    """All five answer: the meter in kW with phases, storage with SOC, PV and piles limits."""
    site.bank("storage", 3).set("soc_pct", 61.5)
    rows = by_key(await probe(site.devices))
    assert set(rows) == {("meter", 9), ("storage", 3), ("pv", 5), ("charger", 6), ("charger", 7)}
    assert all(r.online and not r.error for r in rows.values())
    assert "grid" in rows["meter", 9].reading
    assert "A/B/C" in rows["meter", 9].reading
    assert "meter's PT/CT 1/1, configured 1/1" in rows["meter", 9].reading
    assert "SOC 61.5 %" in rows["storage", 3].reading
    assert rows["storage", 3].address.startswith("tcp 127.0.0.1:")
    assert rows["pv", 5].model == "generic-pv"
    table = probe_rows(list(rows.values()))
    assert table[0][:3] == ["kind", "id", "name"]
    assert len(table) == 6


async def test_dead_hung_and_wrong_id_said_in_words(site: ServedSite) -> None:
    """Stopped: no connection; muted: no answer (slave id, baud...); the others unaffected."""
    await site.servers.endpoints["storage", 3].stop()
    site.servers.endpoints["pv", 5].mute(True)
    rows = by_key(await probe(site.devices))
    site.servers.endpoints["pv", 5].mute(False)
    assert not rows["storage", 3].online
    assert rows["storage", 3].error.startswith("no connection to 127.0.0.1:")
    assert not rows["pv", 5].online
    assert rows["pv", 5].error.startswith("connected, but no answer within 0.1 s")
    assert rows["meter", 9].online
    assert rows["charger", 6].online


async def test_wrong_slave_id_behind_a_gateway() -> None:
    """Unit 2 where only unit 1 is served: the gateway's exception 11, named."""
    data = site_dict()
    async with ServedSite(data) as served:
        bound = served.servers.bound().model_dump()
        bound["meters"][0]["modbus"]["slave_id"] = 2
        devices = build_site_devices(parse_site_config(bound), clock=served.clock)
        try:
            rows = by_key(await probe(devices))
        finally:
            close_site_devices(devices)
    assert rows["meter", 9].error.startswith("exception 11, gateway target failed")


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ("", ""),
        ("tcp:h:1: cannot connect", "no connection to 127.0.0.1:502"),
        ("x: exception response ExceptionResponse(exception_code=2)", "exception 02, illegal"),
        ("read input 0x0000+2: no answer within 0.5 s", "connected, but no answer within 0.5 s"),
        ("something new", "something new"),
    ],
    ids=["none", "refused", "exception-02", "timeout", "unknown-kept"],
)
def test_error_in_words(error: str, expected: str) -> None:
    assert error_in_words(error, ModbusLink()).startswith(expected)


async def test_cli_prints_the_table_and_exits_1_when_one_is_offline(
    site: ServedSite, tmp_path: Path
) -> None:
    """The command a user runs: a table row per device, the count, exit 1 if one is offline."""
    config = tmp_path / "site.toml"
    bound = site.servers.bound().model_dump(mode="json", exclude_none=True)
    config.write_text(tomli_w.dumps(bound))
    await site.servers.endpoints["chargers", 7].stop()
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "gridguard", "devices", "probe", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines, done.stderr
    assert lines[0].split()[:3] == ["kind", "id", "name"]
    assert any(line.startswith("charger  7") and "NO" in line for line in lines), done.stdout
    assert "4 of 5 answered" in done.stdout


async def test_meter_ratio_registers_disagreeing_with_the_file(site: ServedSite) -> None:
    """The meter says CT 100, the file says 1: every kW would be 100 times off; probe says so."""
    site.bank("meters", 9).set("ct", 100)
    rows = by_key(await probe(site.devices))
    assert rows["meter", 9].reading.endswith("meter's PT/CT 1/100, configured 1/1 MISMATCH")
