"""``gridguard demo`` with fleets of growing size: can the embedded amqtt broker carry them?

    .venv/bin/python bench/demo.py [--fleets 0 200 500 1000 2000] [--window-s 20]

Per ``--fleets`` count, runs ``gridguard demo --fleet N`` in its own process and folder and
measures from outside:

* **ready**: wall time from the start to the printed login block (broker, simulator, agent,
  platform and the whole fleet connected), and the fleet's own connect time as it prints it;
* over ``--window-s`` once ready: the CPU share (100% = one core) of the demo process (agent,
  site simulator, platform and fleet share its event loop) and of its broker process, and
  their RSS together;
* **site status**: the real site's status/post period (2 s asked; the fleet's devices report
  every 10 s) as a subscriber sees it, p50 and max: a loop kept too busy delays the agent's
  cycle and its reports;
* **REST**: ``GET /api/devices?limit=50`` with the printed login, 2 per second, p50 and p99;
* **listed / online**: the platform's device list at the end of the window (total and the
  online ones; every fleet device plus the real site is expected).

The first count (0: the demo without a fleet) is the baseline of the same run; the CPU column
is also given as a ratio to it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import itertools
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import aiomqtt
import httpx

from gridguard.testing.demo import Demo
from gridguard.testing.proc import children, cpu_s, rss_mib

CONNECTED_RE = re.compile(r"devices \S+ \.\. \S+: connected in ([\d.]+) s")
STOP_LIMIT_S = 60.0
SITE_STATUS = "v1/gridguard/gg-demo-001/streaming_overdemand/status/post"


@dataclass(frozen=True, slots=True)
class Row:
    fleet: int
    ready_s: float
    connect_s: float | None
    cpu_pct: float
    broker_cpu_pct: float
    rss_mib: float
    status_p50_s: float
    status_max_s: float
    rest_p50_ms: float
    rest_p99_ms: float
    listed: int
    online: int
    warnings: int
    stop_s: float


def broker_pid(pid: int) -> int:
    """The demo's broker process (its only child)."""
    (child,) = children(pid)
    return child


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) > 1 else values[0]


async def site_periods(port: int, window_s: float) -> list[float]:
    """Seconds between the real site's status reports over ``window_s``."""
    arrivals: list[float] = []
    with contextlib.suppress(TimeoutError):
        async with (
            asyncio.timeout(window_s),
            aiomqtt.Client("127.0.0.1", port, identifier=f"bench-{os.getpid()}") as client,
        ):
            await client.subscribe(SITE_STATUS)
            async for message in client.messages:  # until the timeout: a loop, not a list
                if message.topic.value == SITE_STATUS:  # amqtt replays other retained ones
                    arrivals.append(time.monotonic())  # noqa: PERF401
    return [b - a for a, b in itertools.pairwise(arrivals)]


async def rest_latencies(api: httpx.AsyncClient, token: str, window_s: float) -> list[float]:
    """Milliseconds per ``GET /api/devices?limit=50``, 2 per second over ``window_s``."""
    out: list[float] = []
    end = time.monotonic() + window_s
    headers = {"Authorization": f"Bearer {token}"}
    while time.monotonic() < end:
        started = time.perf_counter()
        answer = await api.get("/api/devices", params={"limit": 50}, headers=headers)
        out.append((time.perf_counter() - started) * 1000)
        answer.raise_for_status()
        await asyncio.sleep(0.5)
    return out


async def device_counts(api: httpx.AsyncClient, token: str) -> tuple[int, int]:
    headers = {"Authorization": f"Bearer {token}"}
    every = (await api.get("/api/devices", params={"limit": 1}, headers=headers)).json()
    online = await api.get("/api/devices", params={"limit": 1, "online": True}, headers=headers)
    return int(every["total"]), int(online.json()["total"])


def spawn(fleet: int, folder: str) -> Demo:
    process = subprocess.Popen(
        [sys.executable, "-m", "gridguard", "demo", "--fleet", str(fleet)],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return Demo(process).start_reading()


async def measure(fleet: int, window_s: float) -> Row:
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as folder:
        started = time.monotonic()
        demo = spawn(fleet, folder)
        process = demo.process
        try:
            await asyncio.to_thread(demo.ready.wait, 300)
            ready_s = time.monotonic() - started
            assert process.poll() is None, "\n".join(demo.lines)
            found = CONNECTED_RE.search("\n".join(demo.lines))
            async with httpx.AsyncClient(base_url=demo.url, timeout=30) as api:
                login = await api.post(
                    "/api/auth/login", json=dict(zip(("name", "password"), demo.login, strict=True))
                )
                token = login.json()["token"]
                broker = broker_pid(process.pid)
                cpu_before, wall_before = cpu_s(process.pid), time.monotonic()
                broker_before = cpu_s(broker)
                periods, latencies = await asyncio.gather(
                    site_periods(demo.port, window_s), rest_latencies(api, token, window_s)
                )
                wall_s = time.monotonic() - wall_before
                cpu_pct = (cpu_s(process.pid) - cpu_before) / wall_s * 100
                broker_cpu_pct = (cpu_s(broker) - broker_before) / wall_s * 100
                listed, online = await device_counts(api, token)
            measured = Row(
                fleet=fleet,
                ready_s=ready_s,
                connect_s=float(found.group(1)) if found else None,
                cpu_pct=cpu_pct,
                broker_cpu_pct=broker_cpu_pct,
                rss_mib=rss_mib(process.pid) + rss_mib(broker),
                status_p50_s=statistics.median(periods),
                status_max_s=max(periods),
                rest_p50_ms=statistics.median(latencies),
                rest_p99_ms=p99(latencies),
                listed=listed,
                online=online,
                warnings=0,
                stop_s=0.0,
            )
        finally:
            stop_s = await interrupt(process)
        return dataclasses.replace(measured, warnings=warnings(demo.lines), stop_s=stop_s)


def warnings(lines: list[str]) -> int:
    """Log lines at WARNING or above (a Modbus device of the site late, fail-safe, ...)."""
    return sum(1 for line in lines if re.search(r" (WARNING|ERROR|CRITICAL) ", line))


async def interrupt(process: subprocess.Popen[str]) -> float:
    """Ctrl-C; seconds until it exited (inf, and killed, after STOP_LIMIT_S)."""
    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    try:
        await asyncio.to_thread(process.wait, STOP_LIMIT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        await asyncio.to_thread(process.wait)
        return float("inf")
    return time.monotonic() - started


def print_table(rows: list[Row], baseline_cpu_pct: float) -> None:
    print(
        f"{'fleet':>6} {'ready':>7} {'connect':>8} {'CPU':>5} {'x base':>7} {'broker':>7} "
        f"{'RSS MiB':>8} "
        f"{'status p50':>11} {'max':>6} {'REST p50':>9} {'p99':>7} {'listed':>7} {'online':>7}"
    )
    for r in rows:
        connect = f"{r.connect_s:.1f}s" if r.connect_s is not None else "-"
        ratio = r.cpu_pct / baseline_cpu_pct if baseline_cpu_pct > 0 else float("nan")
        print(
            f"{r.fleet:>6} {r.ready_s:>6.1f}s {connect:>8} {r.cpu_pct:>4.0f}% {ratio:>6.1f}x "
            f"{r.broker_cpu_pct:>6.0f}% {r.rss_mib:>8.0f} "
            f"{r.status_p50_s:>10.2f}s {r.status_max_s:>5.2f}s "
            f"{r.rest_p50_ms:>7.1f}ms {r.rest_p99_ms:>5.0f}ms {r.listed:>7} {r.online:>7} "
            f"{r.warnings:>9} {r.stop_s:>5.1f}s"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fleets", type=int, nargs="+", default=[0, 200, 500, 1000, 2000])
    parser.add_argument("--window-s", type=float, default=20.0)
    args = parser.parse_args()
    rows: list[Row] = []
    for fleet in args.fleets:
        rows.append(await measure(fleet, args.window_s))
        print_table(rows[-1:], rows[0].cpu_pct)
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n")
    print_table(rows, rows[0].cpu_pct)


if __name__ == "__main__":
    asyncio.run(main())
