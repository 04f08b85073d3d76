"""Shared fixtures: a small site on free loopback ports, served by the simulator's servers."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Self

import pytest

from gridguard.clock import FakeClock
from gridguard.devices.factory import build_site_devices, close_site_devices
from gridguard.devices.protocols import SiteDevices
from gridguard.sim.servers import RegisterBank, SiteServers
from gridguard.site.config import parse_site_config


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def link(port: int = 0, slave_id: int = 1) -> dict[str, Any]:
    # Short timeouts keep failure tests fast; they bound waits, they are not asserted.
    return {"host": "127.0.0.1", "port": port, "slave_id": slave_id, "timeout_s": 0.1, "retries": 1}


def site_dict(**meter: Any) -> dict[str, Any]:
    """One gateway meter with a PCS, a PV inverter and two charging piles behind it."""
    return {
        "device": {"uid": "gg-test"},
        "control": {"period_s": 0.25},
        "meters": [{"id": 9, "type": "Acrel-ADW300", "modbus": link(), **meter}],
        "storage": [
            {"id": 3, "meter_id": 9, "rated_kw": 250, "capacity_kwh": 500, "modbus": link()}
        ],
        "pv": [{"id": 5, "meter_id": 9, "rated_kw": 400, "modbus": link()}],
        "chargers": [
            {"id": 6, "meter_id": 9, "rated_kw": 120, "min_kw": 20, "modbus": link()},
            {"id": 7, "meter_id": 9, "rated_kw": 60, "min_kw": 7, "modbus": link()},
        ],
    }


class ServedSite:
    """Servers for a site config, and drivers pointed at them with a fake clock."""

    devices: SiteDevices

    def __init__(self, data: dict[str, Any], maps_dir: Path | None = None) -> None:
        self.servers = SiteServers(parse_site_config(data), maps_dir)
        self.clock = FakeClock()
        self.maps_dir = maps_dir

    async def __aenter__(self) -> Self:
        await self.servers.start()
        self.devices = build_site_devices(self.servers.bound(), self.maps_dir, clock=self.clock)
        return self

    async def __aexit__(self, *exc: object) -> None:
        close_site_devices(self.devices)
        await self.servers.stop()

    def bank(self, section: str, device_id: int) -> RegisterBank:
        return self.servers.bank(section, device_id)


@pytest.fixture
async def site() -> AsyncIterator[ServedSite]:
    async with ServedSite(site_dict()) as served:
        yield served
