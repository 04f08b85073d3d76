"""Commissioning over Modbus TCP on loopback: observe mode leaves the simulator's registers
alone; a setpoint that another Modbus master writes is noticed within a few cycles."""

from __future__ import annotations

import asyncio

import pytest
from pymodbus.client import AsyncModbusTcpClient

from gridguard.devices.modbus.codec import encode_point
from gridguard.testing.wait import wait_for
from tests.test_closed_loop_modbus import PERIOD_S, Scene, rig

pytestmark = pytest.mark.integration


async def test_observe_mode_writes_no_register_and_reports_what_it_would() -> None:
    """PV 500 kW > load 300 kW exports; observing, no setpoint register changes."""
    async with rig(Scene(load_kw=300.0, pv_kw=500.0), mode="observe") as r:
        storage, pv = r.sim.servers.bank("storage", 3), r.sim.servers.bank("pv", 5)
        before = (storage.get("power_setpoint_kw"), pv.get("power_limit_kw"))
        await wait_for(lambda: r.engine.status().cycle >= 25, 20.0, "25 cycles")
        assert (storage.get("power_setpoint_kw"), pv.get("power_limit_kw")) == before
        assert r.grid_kw() < 0.0  # nothing acts: the site still exports
        status = r.engine.status()
        assert status.mode == "observe"
        would = {d.kind: d.setpoint_kw for d in status.devices if d.meter_id == 9}
        assert would["storage"] is not None
        assert would["storage"] < 0.0  # it would charge to absorb the surplus


async def test_another_master_writing_the_pv_limit_raises_an_event() -> None:
    """A second Modbus client keeps writing 50 kW to the PV limit we hold at 400: one event."""
    async with rig(Scene(load_kw=300.0, pv_kw=340.0), readback_interval_s=3 * PERIOD_S) as r:
        await wait_for(lambda: r.engine.status().cycle >= 5, 10.0, "5 cycles")
        link = r.sim.servers.bound().pv[0].modbus
        point = r.sim.servers.bank("pv", 5).regmap.points["power_limit_kw"]
        client = AsyncModbusTcpClient(link.host, port=link.port)
        await client.connect()
        try:

            async def intrude() -> None:
                while True:
                    registers = encode_point(point, 50.0, "big")
                    await client.write_registers(point.address, registers, device_id=1)
                    await asyncio.sleep(PERIOD_S / 4)  # the intruder's own pace, not a wait

            intruder = asyncio.create_task(intrude())
            try:
                await wait_for(
                    lambda: any(e.kind == "setpoint_overridden" for e in r.events),
                    10 * 3 * PERIOD_S,
                    "a setpoint_overridden event",
                )
            finally:
                intruder.cancel()
        finally:
            client.close()
        event = next(e for e in r.events if e.kind == "setpoint_overridden")
        assert event.device == ("pv", 5)
