"""Cycle time over Modbus TCP: one gateway meter and five devices, against the site simulator.

The simulator runs as `gridguard sim run` in its own process (as on a real bench, the agent does
not share its event loop with the devices); the agent side uses the production drivers from
`build_site_devices`. Printed: p50 / p99 / max of each case over N cycles, with a raw one-register
round trip as the baseline, and a case with one hung device (accepts, never answers) to show
that a dead device does not stall the cycle (D21).

    .venv/bin/python bench/modbus.py [--cycles 500]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from pymodbus.client import AsyncModbusTcpClient

from gridguard.devices.factory import build_site_devices, close_site_devices, running_status
from gridguard.devices.protocols import (
    ChargerControl,
    GridMeter,
    PvControl,
    SiteDevices,
    StorageControl,
)
from gridguard.site.config import load_site_config, parse_site_config
from gridguard.testing.sites import start_simulator, stop_simulator

PERIOD_S = 1.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def site_toml(ports: list[int]) -> str:
    """1 meter, 2 PCS, 1 PV inverter, 2 charging piles, each on its own loopback port."""

    def modbus(port: int) -> str:
        return f'modbus = {{ host = "127.0.0.1", port = {port}, timeout_s = 0.1, retries = 1 }}'

    m, s1, s2, pv, c1, c2 = ports
    return f"""
[device]
uid = "bench"
[control]
period_s = {PERIOD_S}
[[meters]]
id = 1
type = "Acrel-ADW300"
{modbus(m)}
[[storage]]
id = 2
meter_id = 1
rated_kw = 250
capacity_kwh = 500
{modbus(s1)}
[[storage]]
id = 3
meter_id = 1
rated_kw = 100
capacity_kwh = 200
{modbus(s2)}
[[pv]]
id = 4
meter_id = 1
rated_kw = 400
{modbus(pv)}
[[chargers]]
id = 5
meter_id = 1
rated_kw = 120
min_kw = 20
{modbus(c1)}
[[chargers]]
id = 6
meter_id = 1
rated_kw = 60
min_kw = 7
{modbus(c2)}
"""


class _Outrunning:
    """A monotonic clock that jumps an hour per reading: no backoff ever holds."""

    def __init__(self) -> None:
        self._ticks = itertools.count(step=3600.0)

    def monotonic_s(self) -> float:
        return float(next(self._ticks))


async def timed(n: int, step: Callable[[], Awaitable[object]]) -> list[float]:
    for _ in range(20):  # warm-up: connect, plan reads
        await step()
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        await step()
        samples.append((time.perf_counter() - t0) * 1000.0)
    return samples


def read_all(devices: SiteDevices) -> Callable[[], Awaitable[object]]:
    readers: list[GridMeter | StorageControl | PvControl | ChargerControl] = [
        *devices.meters.values(),
        *devices.storage.values(),
        *devices.pv.values(),
        *devices.chargers.values(),
    ]
    return lambda: asyncio.gather(*(d.read() for d in readers))


def write_all(devices: SiteDevices) -> Callable[[], Awaitable[object]]:
    def writes() -> Awaitable[object]:
        return asyncio.gather(
            *(s.write_power_kw(20.0) for s in devices.storage.values()),
            *(p.write_limit_kw(300.0) for p in devices.pv.values()),
            *(c.write_limit_kw(50.0) for c in devices.chargers.values()),
        )

    return writes


def cycle(devices: SiteDevices) -> Callable[[], Awaitable[object]]:
    read, write = read_all(devices), write_all(devices)

    async def one() -> None:
        await read()
        await write()

    return one


async def hung_listener() -> tuple[asyncio.Server, int]:
    """A 'device' that accepts connections and never answers."""

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(1024):
            pass
        writer.close()

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    return server, int(server.sockets[0].getsockname()[1])


async def measure(config: Path, cycles: int) -> list[tuple[str, list[float]]]:
    site = load_site_config(config)
    devices = build_site_devices(site)
    meter_link = site.meters[0].modbus
    raw = AsyncModbusTcpClient("127.0.0.1", port=meter_link.port, timeout=1.0, reconnect_delay=0)
    await raw.connect()

    def raw_read() -> Awaitable[object]:
        return raw.read_holding_registers(0x24, count=2, device_id=1)

    results = [
        ("raw read, 2 registers (baseline)", await timed(cycles, raw_read)),
        ("meter read (driver, 2 requests)", await timed(cycles, devices.meters[1].read)),
        ("read all 6 in parallel", await timed(cycles, read_all(devices))),
        ("write all 5 setpoints in parallel", await timed(cycles, write_all(devices))),
        ("cycle: read all + write all", await timed(cycles, cycle(devices))),
    ]
    raw.close()
    server, port = await hung_listener()
    data = site.model_dump()
    data["pv"][0]["modbus"]["port"] = port  # the inverter hangs; the others still answer
    hung_site = parse_site_config(data)
    hung = build_site_devices(hung_site)
    results.append(("cycle, PV hung, with backoff", await timed(cycles, cycle(hung))))
    close_site_devices(hung)
    hung = build_site_devices(hung_site, clock=_Outrunning())  # a clock past every backoff:
    results.append(("cycle, PV hung, no backoff (worst)", await timed(cycles, cycle(hung))))
    status = {"meter": running_status(hung.meters[1]), "pv": running_status(hung.pv[4])}
    print(f"running_status after the hung-PV runs: {status}")
    close_site_devices(hung)
    close_site_devices(devices)
    server.close()
    return results


def table(results: list[tuple[str, list[float]]], cycles: int) -> str:
    lines = [
        (
            f"Modbus TCP on loopback, 1 meter + 5 devices, {cycles} cycles per case,"
            " simulator in its own process"
        ),
        f"{'case':<38}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'mean ms':>9}",
    ]
    for name, samples in results:
        q = statistics.quantiles(samples, n=100, method="inclusive")
        lines.append(
            f"{name:<38}{q[49]:>9.2f}{q[98]:>9.2f}{max(samples):>9.2f}"
            f"{statistics.fmean(samples):>9.2f}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=500)
    args = parser.parse_args()
    ports = [free_port() for _ in range(6)]
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "bench.toml"
        config.write_text(site_toml(ports), encoding="utf-8")
        proc = start_simulator(config, ports)
        try:
            results = asyncio.run(measure(config, args.cycles))
        finally:
            out = stop_simulator(proc)
    print(table(results, args.cycles))
    print(f"CPU: {os.cpu_count()} cores; python {sys.version.split()[0]}")
    print("simulator said:", *out.strip().splitlines()[-1:])


if __name__ == "__main__":
    main()
