"""Modbus drivers against the simulator's servers on loopback: values, scaling, setpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gridguard.devices.modbus.meter import ModbusMeter
from gridguard.devices.protocols import ChargerControl, GridMeter, PvControl, StorageControl
from gridguard.sim.servers import RegisterBank
from tests.devices.conftest import ServedSite, site_dict

pytestmark = pytest.mark.integration


def _set_meter(bank: RegisterBank, a: float, b: float, c: float, demand: float = 0.0) -> None:
    for name, kw in (("phase_a_power_kw", a), ("phase_b_power_kw", b), ("phase_c_power_kw", c)):
        bank.set(name, kw)
    bank.set("total_power_kw", a + b + c)
    bank.set("forward_demand_kw", demand)


async def test_drivers_implement_the_protocols(site: ServedSite) -> None:
    """Every built driver satisfies its device Protocol."""
    devices = site.devices
    assert isinstance(devices.meters[9], GridMeter)
    assert isinstance(devices.storage[3], StorageControl)
    assert isinstance(devices.pv[5], PvControl)
    assert all(isinstance(c, ChargerControl) for c in devices.chargers.values())


# (meter config, secondary phase kW A/B/C, secondary demand kW) -> (total, phases, demand)
METER_CASES = [
    # why: plain import, PT = CT = 1
    ({}, ((1.0, 2.0, 3.0), 50.0), (6.0, (1.0, 2.0, 3.0), 50.0)),
    # why: PT x CT scales secondary watts to primary kW, demand too
    ({"pt": 10, "ct": 20}, ((0.5, -0.25, 0.1), 1.2), (70.0, (100.0, -50.0, 20.0), 240.0)),
    # why: a reversed meter flips every sign; its forward demand is not import demand
    ({"direction": -1}, ((-1.0, -2.0, 0.5), 9.0), (2.5, (1.0, 2.0, -0.5), None)),
    # why: little word order on both meter and config decodes the same values
    ({"word_order": "little"}, ((-70.0, 0.5, 70.0), 1.0), (0.5, (-70.0, 0.5, 70.0), 1.0)),
    # why: per_phase false reports no phases (D16 refuses single-phase mode then)
    ({"per_phase": False}, ((1.0, 1.0, 1.0), 0.0), (3.0, None, 0.0)),
]


@pytest.mark.parametrize(
    ("meter", "secondary", "want"),
    METER_CASES,
    ids=["plain", "pt-ct", "reversed", "little-endian", "no-phases"],
)
async def test_meter_scaling_direction_word_order(
    meter: dict[str, Any],
    secondary: tuple[tuple[float, float, float], float],
    want: tuple[float, tuple[float, float, float] | None, float | None],
) -> None:
    """The meter reading is PT x CT scaled, direction-corrected and word-order decoded."""
    phases, demand = secondary
    want_total, want_phases, want_demand = want
    async with ServedSite(site_dict(**meter)) as served:
        _set_meter(served.bank("meters", 9), *phases, demand=demand)
        reading = await served.devices.meters[9].read()
    assert reading.valid
    assert reading.grid_power_kw == pytest.approx(want_total)
    if want_phases is None:
        assert reading.phase_power_kw is None
    else:
        assert reading.phase_power_kw == pytest.approx(want_phases)
    assert reading.demand_kw == (None if want_demand is None else pytest.approx(want_demand))


async def test_storage_read_and_setpoint(site: ServedSite) -> None:
    """PCS power/SOC/limits decode; the setpoint is clamped to +/- rated and written signed."""
    bank = site.bank("storage", 3)
    writes: list[tuple[str, object]] = []
    site.servers.devices["storage", 3].on_write = lambda name, kw: writes.append((name, kw))
    for name, value in (
        ("power_kw", -120.5),
        ("soc_pct", 42.3),
        ("max_charge_kw", 300.0),
        ("max_discharge_kw", 80.0),
        ("run_state", 1),
    ):
        bank.set(name, value)
    storage = site.devices.storage[3]
    reading = await storage.read()
    assert reading.online
    assert (reading.power_kw, reading.soc_pct) == pytest.approx((-120.5, 42.3))
    # why: a BMS limit above the rating is capped at the rating
    assert (reading.max_charge_kw, reading.max_discharge_kw) == pytest.approx((250.0, 80.0))
    await storage.write_power_kw(-400.0)
    assert bank.get("power_setpoint_kw") == pytest.approx(-250.0)
    assert writes == [("power_setpoint_kw", pytest.approx(-250.0))]


async def test_storage_not_running_offers_no_power(site: ServedSite) -> None:
    """A PCS whose run state is not 'running' can neither charge nor discharge."""
    bank = site.bank("storage", 3)
    bank.set("max_charge_kw", 100.0)
    bank.set("max_discharge_kw", 100.0)
    bank.set("run_state", 2)
    reading = await site.devices.storage[3].read()
    assert reading.online
    assert (reading.max_charge_kw, reading.max_discharge_kw) == (0.0, 0.0)


@pytest.mark.parametrize(
    ("limit_kw", "written_kw"),
    [(150.0, 150.0), (-5.0, 0.0), (900.0, 400.0)],
    ids=["in-range", "negative-clamped-to-zero", "above-rated"],
)
async def test_pv_limit_in_kw(site: ServedSite, limit_kw: float, written_kw: float) -> None:
    """D20: the PV limit is clamped to 0..rated before it reaches the unsigned register."""
    await site.devices.pv[5].write_limit_kw(limit_kw)
    bank = site.bank("pv", 5)
    assert bank.get("power_limit_kw") == pytest.approx(written_kw)
    bank.set("power_kw", 99.5)
    reading = await site.devices.pv[5].read()
    assert (reading.power_kw, reading.limit_kw, reading.rated_kw) == pytest.approx(
        (99.5, written_kw, 400.0)
    )


async def test_pv_limit_in_percent_from_a_user_map(tmp_path: Path) -> None:
    """A user map with only a % limit: the driver writes kW as % of rated, reads it back."""
    (tmp_path / "pct-pv.toml").write_text(
        'kind = "pv"\n'
        '[points.power_kw]\naddress = 0\ntype = "u16"\nscale = 0.1\nfunction = "input"\n'
        '[points.power_limit_pct]\naddress = 10\ntype = "u16"\nscale = 0.01\naccess = "rw"\n',
        encoding="utf-8",
    )
    data = site_dict()
    data["pv"][0]["model"] = "pct-pv"
    async with ServedSite(data, tmp_path) as served:
        await served.devices.pv[5].write_limit_kw(150.0)
        assert served.bank("pv", 5).get("power_limit_pct") == pytest.approx(37.5)
        reading = await served.devices.pv[5].read()
    assert reading.limit_kw == pytest.approx(150.0)


async def test_charger_limit_and_connected(site: ServedSite) -> None:
    """Charger limit is clamped (never negative), power and connected decode."""
    pile = site.devices.chargers[6]
    bank = site.bank("chargers", 6)
    await pile.write_limit_kw(-3.0)
    assert bank.get("power_limit_kw") == 0.0
    await pile.write_limit_kw(45.26)
    assert bank.get("power_limit_kw") == pytest.approx(45.3)
    bank.set("power_kw", 44.0)
    bank.set("connected", 1)
    reading = await pile.read()
    assert reading.online
    assert reading.connected
    assert (reading.power_kw, reading.limit_kw) == pytest.approx((44.0, 45.3))


async def test_read_only_register_write_is_refused_by_the_server(site: ServedSite) -> None:
    """The simulator refuses writes to read-only points, like a real device."""
    meter = site.devices.meters[9]
    assert isinstance(meter, ModbusMeter)
    channel = meter.device.channel
    from gridguard.devices.modbus.link import DeviceRefusedError  # noqa: PLC0415

    with pytest.raises(DeviceRefusedError):
        await channel.write(0x0024, [0, 1])
    assert not channel.online
    assert (await site.devices.meters[9].read()).valid
