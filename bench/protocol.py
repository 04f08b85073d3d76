"""Command round trip and sustained throughput through Mosquitto on loopback.

    .venv/bin/python bench/protocol.py [--latency-n 2000] [--closed-n 4000] [--flood-n 20000]
                                       [--window 64] [--rounds 10]

Starts its own Mosquitto (``set_tcp_nodelay true``, ``max_queued_messages 0``) on a free
127.0.0.1 port, then measures two servers, each in its own process with TCP_NODELAY on its
socket, in rounds that alternate between them (the machine's speed drifts; both must see it):

* **echo**: a raw MQTT client that publishes every request back (no parsing, no storage): the
  baseline, what the broker and the MQTT client library cost on their own;
* **agent**: ``gridguard edge run`` on ``examples/edge.toml`` with durable SQLite (WAL,
  synchronous=FULL), answering update commands (each one committed before its reply is
  published; list/post coalesced after changes), its control loop running.

Three numbers per server: p50/p99 round trip of sequential requests (Python SDK); requests per
second in a closed loop with ``--window`` in flight (Python SDK, which on 2 cores costs about
as much CPU per request as the server); and the sustained rate under a flood published by
``mosquitto_pub`` (C, 64 in flight to the broker), replies counted by ``mosquitto_sub``.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import multiprocessing
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any, Self

import aiomqtt
import tomli_w

from gridguard.client import StrategyClient
from gridguard.edge.link import NODELAY_OPTION, forwarding_queue
from gridguard.protocol.codec import json_bytes
from gridguard.protocol.topics import TopicScheme, build_topic
from gridguard.testing.examples import CREATE_DATA
from gridguard.testing.mosquitto import MosquittoProcess

ROOT = Path(__file__).resolve().parents[1]
SCHEME = TopicScheme("custom", prefix="bench/gridguard")
DEVICE = "gg-bench-001"
CREATE = CREATE_DATA
ECHO = "raw MQTT echo (baseline)"
AGENT = "gridguard edge agent, update (SQLite FULL)"
DISK = "durable commit alone (sqlite3, WAL FULL)"


def echo_server(port: int, ready: Any) -> None:
    """Process body: echo every message on bench/echo/req to bench/echo/resp.

    With the agent's own fast paths (messages forwarded from aiomqtt's queue, replies published
    concurrently without a timer each), so the baseline is the best this MQTT stack does, and
    the difference to the agent is the agent's own work: parsing, rules, the durable commit."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        replies: set[asyncio.Task[None]] = set()

        def echo(message: aiomqtt.Message) -> None:
            payload = message.payload if isinstance(message.payload, bytes) else b""
            reply = client.publish("bench/echo/resp", payload, qos=1, timeout=math.inf)
            task = loop.create_task(reply)
            replies.add(task)
            task.add_done_callback(replies.discard)

        client = aiomqtt.Client(
            "127.0.0.1", port, socket_options=[NODELAY_OPTION], queue_type=forwarding_queue(echo)
        )
        client.pending_calls_threshold = 1_000_000
        async with client:
            await client.subscribe("bench/echo/req", qos=1)
            ready.set()
            async for _ in client.messages:  # returns when the connection drops
                pass

    asyncio.run(main())


class EchoClient:
    """Requester side of the echo baseline: correlates by a 16-byte id prefix."""

    def __init__(self, port: int) -> None:
        self._client = aiomqtt.Client(
            "127.0.0.1",
            port,
            socket_options=[NODELAY_OPTION],
            queue_type=forwarding_queue(self._on_message),
        )
        self._client.pending_calls_threshold = 1_000_000
        self._pending: dict[bytes, asyncio.Future[None]] = {}
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        await self._client.__aenter__()
        await self._client.subscribe("bench/echo/resp", qos=1)
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._reader:
            self._reader.cancel()
        await self._client.__aexit__(None, None, None)

    async def _read(self) -> None:
        async for message in self._client.messages:  # only if one bypassed the forwarding
            self._on_message(message)

    def _on_message(self, message: aiomqtt.Message) -> None:
        payload = message.payload if isinstance(message.payload, bytes) else b""
        future = self._pending.pop(payload[:16], None)
        if future and not future.done():
            future.set_result(None)

    async def request(self) -> None:
        key = uuid.uuid4().bytes
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        await self._client.publish("bench/echo/req", key + b"x" * 300, qos=1)
        await asyncio.wait_for(future, 10)


def agent_config(folder: Path, port: int) -> Path:
    data: dict[str, Any] = tomllib.loads((ROOT / "examples" / "edge.toml").read_text())
    data["device"]["uid"] = DEVICE
    data["mqtt"].update(
        {"url": f"mqtt://127.0.0.1:{port}", "prefix": "bench/gridguard", "status_enabled": False}
    )
    data["store"]["url"] = f"sqlite:///{folder / 'edge.db'}"
    path = folder / "edge.toml"
    path.write_bytes(tomli_w.dumps(data).encode())
    return path


Request = Callable[[], Awaitable[None]]
PROBE = b"__bench_ready__"
WARM_UP = 100
"""Requests on each new connection before measuring."""
SETTLE_S = 1.0
"""Pause before each measurement: what the last phase left behind (a flood's coalesced
list/post, the broker's and the disk's backlog) must not land in the next one's samples."""


@dataclass
class Rate:
    """Requests answered over the seconds they took, summed over rounds."""

    requests: int = 0
    seconds: float = 0.0

    def add(self, requests: int, seconds: float) -> None:
        self.requests += requests
        self.seconds += seconds

    @property
    def per_s(self) -> float:
        return self.requests / self.seconds


@dataclass
class Samples:
    """One server's measurements, gathered over interleaved rounds."""

    latency_ms: list[float] = field(default_factory=list)
    closed: Rate = field(default_factory=Rate)
    flood: Rate = field(default_factory=Rate)

    def row(self) -> dict[str, float]:
        ordered = sorted(self.latency_ms)
        return {
            "p50_ms": statistics.median(ordered),
            "p99_ms": ordered[int(0.99 * (len(ordered) - 1))],
            "closed_per_s": self.closed.per_s,
            "flood_per_s": self.flood.per_s,
        }


async def sequential(request: Request, n: int, out: list[float]) -> None:
    for _ in range(n):
        started = time.perf_counter()
        await request()
        out.append((time.perf_counter() - started) * 1000)


async def windowed(request: Request, n: int, window: int, out: Rate) -> None:
    """``n`` requests, ``window`` in flight, each awaiting its reply (a closed loop)."""
    semaphore = asyncio.Semaphore(window)

    async def one() -> None:
        async with semaphore:
            await request()

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    out.add(n, time.perf_counter() - started)


def flood(port: int, request_topic: str, reply_topic: str, lines: list[bytes]) -> list[bytes]:
    """Publish ``lines`` with ``mosquitto_pub`` (C, QoS 1, ``-M 64`` in flight) and collect as
    many replies with ``mosquitto_sub``: the sustained rate of the server, not of a Python load
    generator (on 2 cores that one costs as much CPU per request as the server it measures)."""
    common = ["-h", "127.0.0.1", "-p", str(port), "-q", "1", "--nodelay"]
    sub = subprocess.Popen(
        ["mosquitto_sub", *common, "-t", reply_topic], stdout=subprocess.PIPE, text=False
    )
    assert sub.stdout is not None
    stdout = sub.stdout
    replies: list[bytes] = []
    ready, done = threading.Event(), threading.Event()

    def read() -> None:
        for line in stdout:
            if line.rstrip(b"\n") == PROBE:
                ready.set()
                continue
            replies.append(line)
            if len(replies) == len(lines):
                done.set()
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        while not ready.is_set():  # subscribed once a probe comes back
            probe = ["mosquitto_pub", *common, "-t", reply_topic, "-m", PROBE.decode()]
            subprocess.run(probe, check=True)
            ready.wait(0.2)
        with subprocess.Popen(
            ["mosquitto_pub", *common, "-M", "64", "-t", request_topic, "-l"],
            stdin=subprocess.PIPE,
        ) as pub:
            assert pub.stdin is not None
            pub.stdin.write(b"\n".join(lines) + b"\n")
            pub.stdin.close()
            if not done.wait(120):
                raise SystemExit(f"flood: {len(replies)} of {len(lines)} replies in 120 s")
    finally:
        sub.terminate()
        sub.wait(10)
    return replies


def update_payload(strategy_id: int, condition_kw: int, mid: str | None = None) -> bytes:
    return json_bytes(
        {
            "mid": mid or str(uuid.uuid4()),
            "type": "streaming_overdemand_update",
            "device_uid": DEVICE,
            "timestamp": int(time.time() * 1000),
            "data": {"id": strategy_id, "streaming_condition": condition_kw % 1000},
        }
    )


class Server:
    """How the bench talks to one server: sequential/closed-loop requests and the flood."""

    def __init__(self, name: str, port: int, strategy_id: int = 0) -> None:
        self.name = name
        self.port = port
        self.strategy_id = strategy_id
        self.samples = Samples()

    @asynccontextmanager
    async def requests(self) -> AsyncIterator[Request]:
        if self.name == ECHO:
            async with EchoClient(self.port) as echo:
                yield echo.request
            return
        client = StrategyClient(f"mqtt://127.0.0.1:{self.port}", SCHEME, DEVICE, timeout_s=30)
        async with client as ems:

            async def update() -> None:
                mid = str(uuid.uuid4())
                payload = update_payload(self.strategy_id, random.randrange(1000), mid)
                await ems.send_raw("update", payload, mid)

            yield update

    async def measure(self, sequential_n: int, closed_n: int, window: int) -> None:
        await asyncio.sleep(SETTLE_S)
        async with self.requests() as request:
            await sequential(request, WARM_UP, [])  # a fresh connection, idle CPUs, caches
            await sequential(request, sequential_n, self.samples.latency_ms)
            await windowed(request, closed_n, window, self.samples.closed)

    def measure_flood(self, n: int) -> None:
        if self.name == ECHO:
            lines = [uuid.uuid4().bytes.hex().encode() + b"x" * 268 for _ in range(n)]
            request_topic, reply_topic = "bench/echo/req", "bench/echo/resp"
        else:
            lines = [update_payload(self.strategy_id, i) for i in range(n)]
            request_topic = build_topic(SCHEME, DEVICE, "update", "command")
            reply_topic = build_topic(SCHEME, DEVICE, "update", "result")
        time.sleep(SETTLE_S)
        started = time.perf_counter()
        replies = flood(self.port, request_topic, reply_topic, lines)
        self.samples.flood.add(n, time.perf_counter() - started)
        if self.name != ECHO:
            refused = [r for r in replies if b'"code":200' not in r]
            if refused:
                raise SystemExit(f"the agent refused {len(refused)} updates: {refused[0]!r}")


async def create_strategy(port: int) -> int:
    async with StrategyClient(f"mqtt://127.0.0.1:{port}", SCHEME, DEVICE, timeout_s=30) as ems:
        for _ in range(100):
            try:
                created = await ems.create(CREATE)
            except TimeoutError:
                continue
            if created.code != HTTPStatus.OK.value or created.data is None:
                raise SystemExit(f"create refused: {created.msg}")
            return created.data.id
    raise SystemExit("the agent did not answer")


class DiskCommits:
    """The disk's share, measured in the same rounds: one-row commits through stdlib sqlite3
    with the agent's settings (WAL, synchronous=FULL), each one fsync, on the same file system.
    Not a server; its round trip is the commit's own time."""

    def __init__(self, folder: Path) -> None:
        self._db = sqlite3.connect(folder / "disk.db", isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, payload BLOB)")
        self.latency_ms: list[float] = []

    def measure(self, n: int) -> None:
        for _ in range(n):
            started = time.perf_counter()
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("INSERT INTO t (payload) VALUES (?)", (b"x" * 300,))
            self._db.execute("COMMIT")
            self.latency_ms.append((time.perf_counter() - started) * 1000)


def interleaved(servers: list[Server], disk: DiskCommits, args: argparse.Namespace) -> None:
    """Rounds that alternate between the servers (and which goes first), so both see the same
    machine: on a shared VM the speed of everything drifts by tens of percent within minutes,
    and a baseline measured before the agent would not be a baseline of the agent's moment."""
    rounds = args.rounds
    for index in range(rounds):
        order = servers if index % 2 == 0 else servers[::-1]
        for server in order:
            asyncio.run(
                server.measure(args.latency_n // rounds, args.closed_n // rounds, args.window)
            )
        disk.measure(args.latency_n // rounds)
        for server in order:
            server.measure_flood(args.flood_n // rounds)
        print(f"  round {index + 1}/{rounds} done", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-n", type=int, default=2000, help="sequential requests each")
    parser.add_argument("--closed-n", type=int, default=4000, help="closed-loop requests each")
    parser.add_argument("--flood-n", type=int, default=20000, help="flooded requests each")
    parser.add_argument("--window", type=int, default=64, help="closed-loop requests in flight")
    parser.add_argument("--rounds", type=int, default=10, help="alternations echo/agent")
    parser.add_argument("--chart", type=Path, help="also draw the round trips into this PNG")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        # A flood outruns the servers: the broker must queue, not drop (its default keeps 1,000
        # messages per client beyond those in flight and drops the rest, QoS 1 or not).
        broker = MosquittoProcess(folder / "mosquitto", general="max_queued_messages 0\n")
        broker.start()
        ctx = multiprocessing.get_context("spawn")
        ready = ctx.Event()
        echo = ctx.Process(target=echo_server, args=(broker.port, ready), daemon=True)
        agent = subprocess.Popen(
            [
                *(sys.executable, "-m", "gridguard", "edge", "run"),
                *("--config", str(agent_config(folder, broker.port)), "--log-level", "error"),
            ],
        )
        try:
            echo.start()
            ready.wait(10)
            strategy_id = asyncio.run(create_strategy(broker.port))
            servers = [Server(ECHO, broker.port), Server(AGENT, broker.port, strategy_id)]
            print(
                f"measuring the raw MQTT echo and the edge agent in {args.rounds} "
                "alternating rounds ...",
                file=sys.stderr,
            )
            disk = DiskCommits(folder)
            interleaved(servers, disk, args)
        finally:
            agent.terminate()
            agent.wait(10)
            echo.terminate()
            broker.stop()
    print_table(servers[0].samples.row(), servers[1].samples.row(), disk.latency_ms, args)
    if args.chart is not None:
        latency_ms = {s.name: s.samples.latency_ms for s in servers}
        chart(
            {**latency_ms, "durable commit alone (sqlite3, WAL FULL)": disk.latency_ms}, args.chart
        )
        print(f"chart written to {args.chart}", file=sys.stderr)


def chart(latency_ms: dict[str, list[float]], png: Path) -> None:
    """The distribution of sequential round trips, echo beside agent, with the p99 target."""
    import matplotlib as mpl  # noqa: PLC0415

    mpl.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, ax = plt.subplots(figsize=(8, 4.6), layout="constrained")
    p99 = {}
    for name, values in latency_ms.items():
        ordered = sorted(values)
        share = [(i + 0.5) / len(ordered) for i in range(len(ordered))]
        style = "-" if name in (ECHO, AGENT) else ":"
        ax.plot(ordered, share, style, label=name, linewidth=2)
        p99[name] = ordered[int(0.99 * (len(ordered) - 1))]
    target_ms = 3 * p99[ECHO]
    ax.axvline(target_ms, color="firebrick", linestyle="--", linewidth=1)
    ax.text(target_ms, 0.03, "target: agent p99 <= 3 x echo p99 ", color="firebrick", ha="right")
    for level in (0.5, 0.99):
        ax.axhline(level, color="grey", linewidth=0.5)
    ax.set_xscale("log")
    plain = mpl.ticker.FuncFormatter(lambda value, _: f"{value:g}")
    ax.xaxis.set_major_formatter(plain)
    ax.xaxis.set_minor_formatter(
        mpl.ticker.FuncFormatter(lambda value, _: f"{value:g}" if f"{value:g}"[-1] in "25" else "")
    )
    ax.set_yscale("logit")  # the tail gets as much room as the middle
    ax.set_ylim(0.01, 0.9995)
    ax.set_yticks([0.01, 0.1, 0.5, 0.9, 0.99, 0.999])
    ax.yaxis.set_major_formatter(mpl.ticker.FuncFormatter(lambda value, _: f"p{value * 100:g}"))
    ax.yaxis.set_minor_formatter(mpl.ticker.NullFormatter())
    ax.set_xlabel("round trip of one command, ms (log scale)")
    ax.set_ylabel("answered within (percentile)")
    ax.set_title("Sequential QoS 1 round trips through Mosquitto on 127.0.0.1")
    ax.legend(loc="upper left")
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)


def print_table(
    echo: dict[str, float],
    agent: dict[str, float],
    disk_ms: list[float],
    args: argparse.Namespace,
) -> None:
    print(
        f"\nQoS 1 through Mosquitto on 127.0.0.1 (set_tcp_nodelay true); each server: "
        f"{args.latency_n} sequential requests, {args.closed_n} closed-loop ({args.window} in "
        f"flight, Python SDK), {args.flood_n} flooded (mosquitto_pub -M 64); "
        f"{args.rounds} rounds alternating with the other"
    )
    print(
        f"| {'server':<44} | {'p50 ms':>7} | {'p99 ms':>7} | {'closed-loop/s':>13} | "
        f"{'sustained/s':>11} |"
    )
    print(f"|{'-' * 46}|{'-' * 9}|{'-' * 9}|{'-' * 15}|{'-' * 13}|")
    for name, row in [(ECHO, echo), (AGENT, agent)]:
        print(
            f"| {name:<44} | {row['p50_ms']:>7.2f} | {row['p99_ms']:>7.2f} | "
            f"{row['closed_per_s']:>13,.0f} | {row['flood_per_s']:>11,.0f} |"
        )
    disk = sorted(disk_ms)
    print(
        f"| {DISK:<44} | {statistics.median(disk):>7.2f} | "
        f"{disk[int(0.99 * (len(disk) - 1))]:>7.2f} | {'-':>13} | {'-':>11} |"
    )
    print(f"\np99 ratio agent/echo: {agent['p99_ms'] / echo['p99_ms']:.2f} (target <= 3)")
    print(f"agent sustained: {agent['flood_per_s']:,.0f} commands/s (target >= 2,000)")


if __name__ == "__main__":
    main()
