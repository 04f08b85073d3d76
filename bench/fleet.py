"""The fleet simulator at scale: connect time, memory, CPU and the status rate it sustains.

    .venv/bin/python bench/fleet.py [--counts 1000 10000] [--rates 2 0.5 0.25]
                                    [--window-s 15]

Starts a Mosquitto of its own on a free 127.0.0.1 port (open-files limit raised to the hard
limit, so it takes every client), then per ``--counts`` runs ``gridguard sim fleet`` in its own
process and measures, from outside:

* **connect**: wall time until the fleet reports every device connected and subscribed (its
  retained list/post published), and the CPU seconds the fleet process (start-up included)
  and the broker spent on it;
* **RSS**: the fleet process's resident memory once all are connected (from /proc);
* per ``--status-interval-s`` in ``--rates``: status/post messages per second asked for
  (count / interval), sent (the fleet's own count) and received by ``mosquitto_sub`` (C, its
  own process, subscribed to all of them) over ``--window-s``, and the CPU share of the fleet
  and of the broker meanwhile (100% = one core).

With the first interval, the bench then sends one create to every device (a platform client
on ``gridguard.mqtt.lite`` in the bench's process, QoS 1, all at once) and measures creates
per second answered 200, the fleet's CPU per create (decode, rules, reply, list/post) and its
RSS once every device holds a strategy. The smallest count is the baseline of the same run.
A new fleet process is started per interval, so each row starts from a connected, idle fleet.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import resource
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from gridguard.mqtt.lite import LiteClient
from gridguard.protocol.codec import json_bytes
from gridguard.sim.fleet_site import shape_for
from gridguard.testing.examples import CREATE_DATA
from gridguard.testing.mosquitto import MosquittoProcess, count_messages
from gridguard.testing.proc import cpu_s, rss_mib

ROOT = Path(__file__).resolve().parents[1]
CONNECTED_RE = re.compile(r"(\d+) devices connected in ([\d.]+) s")
STATUS_RE = re.compile(r"status (\d+)/s")


@dataclass(frozen=True, slots=True)
class Creates:
    count: int
    seconds: float
    fleet_cpu_us: float
    rss_mib: float


@dataclass(frozen=True, slots=True)
class Row:
    count: int
    interval_s: float
    connect_s: float
    connect_cpu_s: float
    broker_connect_cpu_s: float
    rss_mib: float
    asked_per_s: float
    sent_per_s: float
    got_per_s: float
    cpu_pct: float
    broker_cpu_pct: float


async def create_on_every(port: int, prefix: str, count: int) -> float:
    """Send one create to every device and wait for every result; the seconds it took."""
    done, results = asyncio.Event(), [0]

    def on_result(_client: LiteClient, _topic: str, payload: bytes) -> None:
        results[0] += 1 if b'"code":200' in payload else 0
        if results[0] == count:
            done.set()

    client = LiteClient(f"bench-platform-{uuid.uuid4().hex[:6]}", on_result)
    results_topic = f"{prefix}/+/streaming_overdemand/create/result"
    await client.connect("127.0.0.1", port, subscriptions=[(results_topic, 1)])
    started = time.perf_counter()
    for number in range(count):
        uid = f"sim-{number:05d}"
        data = {**CREATE_DATA, "ele_meter_id": shape_for(number).meters[0].id}
        envelope = {
            "mid": str(uuid.uuid4()),
            "type": "streaming_overdemand_create",
            "device_uid": uid,
            "timestamp": 1,
            "data": data,
        }
        topic = f"{prefix}/{uid}/streaming_overdemand/create/command"
        client.publish(topic, json_bytes(envelope), qos=1)
        if number % 256 == 0:
            await asyncio.sleep(0)  # let the results in meanwhile
    await asyncio.wait_for(done.wait(), 300)
    elapsed_s = time.perf_counter() - started
    client.close()
    return elapsed_s


def run_fleet(
    broker: MosquittoProcess,
    count: int,
    interval_s: float,
    window_s: float,
    *,
    with_commands: bool = False,
) -> tuple[Row, Creates | None]:
    prefix = f"bench/fleet-{uuid.uuid4().hex[:6]}"
    command = [sys.executable, "-m", "gridguard", "sim", "fleet", "--count", str(count)]
    command += ["--mqtt-url", broker.url, "--prefix", prefix]
    command += ["--status-interval-s", str(interval_s), "--stats-interval-s", str(window_s)]
    assert broker.process is not None
    broker_pid = broker.process.pid
    broker_cpu_at_start = cpu_s(broker_pid)
    fleet = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert fleet.stdout is not None
    creates = None
    try:
        for line in fleet.stdout:
            found = CONNECTED_RE.search(line)
            if found:
                break
        else:
            raise RuntimeError("the fleet ended before connecting")
        connect_s = float(found.group(2))
        connect_cpu_s, rss = cpu_s(fleet.pid), rss_mib(fleet.pid)
        broker_connect_cpu_s = cpu_s(broker_pid) - broker_cpu_at_start
        for line in fleet.stdout:  # the first statistics line: status/post has started
            if "status" in line:
                break
        before = (cpu_s(fleet.pid), cpu_s(broker_pid), time.monotonic())
        got = count_messages(broker.port, f"{prefix}/+/streaming_overdemand/status/post", window_s)
        wall_s = time.monotonic() - before[2]
        cpu_pct = (cpu_s(fleet.pid) - before[0]) / wall_s * 100
        broker_cpu_pct = (cpu_s(broker_pid) - before[1]) / wall_s * 100
        sent = next(STATUS_RE.search(line) for line in fleet.stdout if STATUS_RE.search(line))
        if with_commands:
            cpu_before = cpu_s(fleet.pid)
            creates_s = asyncio.run(create_on_every(broker.port, prefix, count))
            creates = Creates(
                count, creates_s, (cpu_s(fleet.pid) - cpu_before) / count * 1e6, rss_mib(fleet.pid)
            )
    finally:
        fleet.terminate()
        fleet.wait(30)
    return Row(
        count,
        interval_s,
        connect_s,
        connect_cpu_s,
        broker_connect_cpu_s,
        rss,
        count / interval_s,
        float(sent.group(1)) if sent else 0.0,
        got / window_s,
        cpu_pct,
        broker_cpu_pct,
    ), creates


def print_table(rows: list[Row]) -> None:
    print(
        f"{'devices':>8} {'connect':>9} {'CPU':>7} {'broker':>7} {'RSS MiB':>8} {'interval':>9} "
        f"{'asked/s':>8} {'sent/s':>8} {'got/s':>8} {'fleet CPU':>10} {'broker CPU':>11}"
    )
    for r in rows:
        print(
            f"{r.count:>8} {r.connect_s:>8.2f}s {r.connect_cpu_s:>6.2f}s "
            f"{r.broker_connect_cpu_s:>6.2f}s {r.rss_mib:>8.1f} "
            f"{r.interval_s:>8.2f}s {r.asked_per_s:>8.0f} {r.sent_per_s:>8.0f} "
            f"{r.got_per_s:>8.0f} {r.cpu_pct:>9.0f}% {r.broker_cpu_pct:>10.0f}%"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--rates", type=float, nargs="+", default=[2.0, 0.5, 0.25])
    parser.add_argument("--window-s", type=float, default=15.0)
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    broker = MosquittoProcess(general="max_queued_messages 0\n")
    broker.start()
    rows: list[Row] = []
    creates: list[Creates] = []
    try:
        for count in sorted(args.counts):
            for index, interval_s in enumerate(args.rates):
                row, made = run_fleet(
                    broker, count, interval_s, args.window_s, with_commands=index == 0
                )
                rows.append(row)
                creates += [made] if made else []
                print_table(rows[-1:])
    finally:
        broker.remove()
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n")
    print_table(rows)
    print(f"\n{'devices':>8} {'creates/s':>10} {'fleet CPU us/create':>20} {'RSS MiB after':>14}")
    for c in creates:
        print(
            f"{c.count:>8} {c.count / c.seconds:>10.0f} {c.fleet_cpu_us:>20.0f} {c.rss_mib:>14.1f}"
        )


if __name__ == "__main__":
    main()
