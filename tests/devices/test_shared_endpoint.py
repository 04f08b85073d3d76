"""Meters behind one Modbus endpoint (a gateway, an RS-485 line: 12 to 125 on one) share its
connection: one unit that does not answer is offline alone; the connection stays up for the
others, and only a transport error drops it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gridguard.devices.modbus.drivers import ModbusStorage
from gridguard.devices.modbus.link import Connection
from gridguard.devices.modbus.meter import ModbusMeter
from tests.devices.conftest import ServedSite, free_port

pytestmark = pytest.mark.integration

METERS = 12


def shared_site(port: int) -> dict[str, Any]:
    """Twelve meters and a PCS, every one a unit id on the same host:port."""

    def link(unit: int) -> dict[str, Any]:
        return {
            "host": "127.0.0.1",
            "port": port,
            "slave_id": unit,
            "timeout_s": 0.1,
            "retries": 1,
        }

    return {
        "device": {"uid": "gg-test"},
        "control": {"period_s": 1.0},
        "meters": [
            {"id": m, "type": "Acrel-ADW300", "modbus": link(m)} for m in range(1, METERS + 1)
        ],
        "storage": [
            {
                "id": 100,
                "meter_id": 1,
                "rated_kw": 250,
                "capacity_kwh": 500,
                "modbus": link(METERS + 1),
            }
        ],
    }


def connection_of(served: ServedSite) -> Connection:
    meter = served.devices.meters[1]
    assert isinstance(meter, ModbusMeter)
    connections = {
        m.device.channel.connection
        for m in served.devices.meters.values()
        if isinstance(m, ModbusMeter)
    }
    assert len(connections) == 1  # why: one endpoint, one connection
    return meter.device.channel.connection


async def test_a_silent_unit_does_not_drop_the_connection_of_the_others() -> None:
    async with ServedSite(shared_site(free_port())) as served:
        connection = connection_of(served)
        for meter in served.devices.meters.values():
            assert (await meter.read()).valid
        assert connection.connects == 1
        (server,) = served.servers.servers
        server.silence(5)
        readings = await asyncio.gather(*(m.read() for m in served.devices.meters.values()))
        valid = {m: r.valid for m, r in zip(served.devices.meters, readings, strict=True)}
        assert not valid.pop(5)
        assert all(valid.values())  # why: the other eleven answered on the same connection
        assert connection.connected
        again = await asyncio.gather(*(m.read() for m in served.devices.meters.values()))
        assert [r.valid for r in again].count(False) == 1
        storage = served.devices.storage[100]
        assert isinstance(storage, ModbusStorage)
        assert (await storage.read()).online
        assert connection.connects == 1  # why: never dropped, never reconnected


async def test_a_silent_unit_backs_off_and_comes_back_when_it_answers() -> None:
    async with ServedSite(shared_site(free_port())) as served:
        (server,) = served.servers.servers
        meter = served.devices.meters[5]
        assert (await meter.read()).valid
        server.silence(5)
        assert not (await meter.read()).valid
        assert not (await meter.read()).valid  # why: backing off, fails at once
        server.silence(5, silent=False)
        assert not (await meter.read()).valid  # why: the fake clock has not moved yet
        served.clock.advance(60.0)
        assert (await meter.read()).valid
        assert connection_of(served).connects == 1


async def test_a_transport_error_drops_the_connection_for_everyone() -> None:
    async with ServedSite(shared_site(free_port())) as served:
        connection = connection_of(served)
        assert (await served.devices.meters[1].read()).valid
        (server,) = served.servers.servers
        await server.stop()
        readings = await asyncio.gather(*(m.read() for m in served.devices.meters.values()))
        assert not any(r.valid for r in readings)
        assert not connection.connected
        await server.start()
        served.clock.advance(60.0)
        assert (await served.devices.meters[2].read()).valid
        assert connection.connects == 2
