"""D21: a dead or hung device reads offline without stalling the others, and comes back."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from collections.abc import Coroutine
from typing import Any

import pytest

from gridguard.devices.factory import build_site_devices, running_status
from gridguard.devices.modbus.drivers import ModbusCharger, ModbusStorage
from gridguard.devices.modbus.regmap import MapError
from gridguard.site.config import parse_site_config
from tests.devices.conftest import ServedSite, free_port, link, site_dict


@pytest.mark.integration
async def test_dead_device_goes_offline_and_comes_back(site: ServedSite) -> None:
    """Server stopped: offline with last values, others fine; restarted: online after backoff."""
    site.bank("storage", 3).set("soc_pct", 61.0)
    storage, meter = site.devices.storage[3], site.devices.meters[9]
    assert (await storage.read()).online
    assert running_status(storage) == 1

    await site.servers.endpoints["storage", 3].stop()
    dead, still = await asyncio.gather(storage.read(), meter.read())
    assert not dead.online
    assert dead.soc_pct == 61.0  # why: the last known value rides along with online=False
    assert still.valid
    assert running_status(storage) == 2

    await site.servers.endpoints["storage", 3].start()
    # why: the reconnect waits out its backoff; the fake clock has not moved yet
    assert not (await storage.read()).online
    site.clock.advance(60.0)
    back = await storage.read()
    assert back.online
    assert running_status(storage) == 1


@pytest.mark.integration
async def test_backoff_doubles_while_the_device_stays_dead(site: ServedSite) -> None:
    """Each failed reconnect doubles the wait before the next attempt (0.5, 1, 2 ... s)."""
    pile = site.devices.chargers[7]
    assert isinstance(pile, ModbusCharger)
    connection = pile.device.channel.connection
    await site.servers.endpoints["chargers", 7].stop()
    assert not (await pile.read()).online  # connection refused: backoff 0.5 s
    waits: list[float] = []
    for _ in range(3):
        waits.append(connection._next_attempt_s - site.clock.monotonic_s())
        site.clock.advance(waits[-1])
        assert not (await pile.read()).online  # another refused attempt
    assert waits == pytest.approx([0.5, 1.0, 2.0])


@pytest.mark.integration
async def test_backoff_stays_capped_after_thousands_of_failures(site: ServedSite) -> None:
    """A device dead for days: the wait stays at its cap instead of overflowing."""
    pile = site.devices.chargers[7]
    assert isinstance(pile, ModbusCharger)
    connection = pile.device.channel.connection
    for _ in range(5000):
        connection.failed()
    assert connection._next_attempt_s - site.clock.monotonic_s() == pytest.approx(10.0)


@pytest.mark.integration
async def test_hung_device_does_not_stall_the_others(site: ServedSite) -> None:
    """A device that accepts but never answers times out alone; the meter answers meanwhile."""
    site.servers.endpoints["pv", 5].mute(muted=True)
    pv_task = asyncio.create_task(site.devices.pv[5].read())
    meter_reading = await site.devices.meters[9].read()
    assert meter_reading.valid
    assert not pv_task.done()  # why: the meter did not wait behind the hung inverter
    pv_reading = await pv_task
    assert not pv_reading.online
    site.servers.endpoints["pv", 5].mute(muted=False)
    site.clock.advance(60.0)
    assert (await site.devices.pv[5].read()).online


@pytest.mark.integration
async def test_read_all_in_parallel_with_one_dead(site: ServedSite) -> None:
    """Reading every device at once: the dead one is offline, every other one answers."""
    await site.servers.endpoints["chargers", 6].stop()
    devices = site.devices
    readers: list[Coroutine[Any, Any, Any]] = [
        devices.meters[9].read(),
        devices.storage[3].read(),
        devices.pv[5].read(),
        devices.chargers[6].read(),
        devices.chargers[7].read(),
    ]
    meter, storage, pv, pile6, pile7 = await asyncio.gather(*readers)
    assert meter.valid
    assert (storage.online, pv.online, pile6.online, pile7.online) == (True, True, False, True)


@pytest.mark.integration
async def test_write_to_dead_device_does_not_raise(site: ServedSite) -> None:
    """A failed write is logged and counted (offline), never raised into the cycle."""
    await site.servers.endpoints["storage", 3].stop()
    storage = site.devices.storage[3]
    assert isinstance(storage, ModbusStorage)
    await storage.write_power_kw(100.0)
    assert not storage.online


@pytest.mark.integration
async def test_shared_endpoint_serves_two_devices_on_one_connection() -> None:
    """Two piles behind one gateway (one port, slave ids 1 and 2) share one connection."""
    port = free_port()
    data = site_dict()
    data["chargers"][0]["modbus"] = link(port, slave_id=1)
    data["chargers"][1]["modbus"] = link(port, slave_id=2)
    async with ServedSite(data) as served:
        served.bank("chargers", 6).set("power_kw", 11.0)
        served.bank("chargers", 7).set("power_kw", 22.0)
        pile6, pile7 = served.devices.chargers[6], served.devices.chargers[7]
        assert isinstance(pile6, ModbusCharger)
        assert isinstance(pile7, ModbusCharger)
        assert pile6.device.channel.connection is pile7.device.channel.connection
        readings = await asyncio.gather(pile6.read(), pile7.read())
    assert [r.power_kw for r in readings] == pytest.approx([11.0, 22.0])


@pytest.mark.unit
@pytest.mark.skipif(importlib.util.find_spec("serial") is not None, reason="pyserial present")
async def test_rtu_without_pyserial_reads_offline() -> None:
    """An RTU device without serial support is offline with a reason, not a crash."""
    data = site_dict()
    data["storage"][0]["modbus"] = {"transport": "rtu", "serial_port": "/dev/null-gridguard"}
    devices = build_site_devices(parse_site_config(data))
    storage = devices.storage[3]
    assert isinstance(storage, ModbusStorage)
    reading = await storage.read()
    assert not reading.online
    assert "serial" in storage.device.channel.last_error


@pytest.mark.unit
@pytest.mark.parametrize(
    ("section", "field", "value", "message"),
    [
        ("storage", "model", "no-such-pcs", "storage[0].model = 'no-such-pcs': no-such-pcs.toml"),
        ("pv", "model", "generic-charger", "pv[0].model = 'generic-charger': map is for a charger"),
        ("meters", "type", "Acme-X1", "meters[0].type = 'Acme-X1': acme-x1.toml"),
    ],
    ids=["unknown-model", "wrong-kind", "unknown-meter-type"],
)
def test_factory_refuses_wrong_maps_before_any_io(
    section: str, field: str, value: str, message: str
) -> None:
    """A wrong model in the site config is refused at start, naming the config key and file."""
    data = site_dict()
    data[section][0][field] = value
    with pytest.raises(MapError) as err:
        build_site_devices(parse_site_config(data))
    assert message in str(err.value)


@pytest.mark.integration
async def test_one_log_line_per_state_change(
    site: ServedSite, caplog: pytest.LogCaptureFixture
) -> None:
    """Offline for many retries: one warning (ours), nothing from pymodbus; back: one info."""
    caplog.set_level(logging.INFO)
    storage = site.devices.storage[3]
    assert (await storage.read()).online
    await site.servers.endpoints["storage", 3].stop()
    caplog.clear()
    for _ in range(5):
        assert not (await storage.read()).online
        site.clock.advance(60.0)  # every read a fresh reconnect attempt
    await site.servers.endpoints["storage", 3].start()
    assert (await storage.read()).online
    lines = [(r.name, r.levelname, r.getMessage()) for r in caplog.records]
    assert not [line for line in lines if line[0].startswith("pymodbus")]
    assert [line[1] for line in lines] == ["WARNING", "INFO"], lines
    assert "offline" in lines[0][2]
    assert lines[1][2].endswith("online")
