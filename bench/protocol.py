"""Command round trip and sustained throughput through Mosquitto on loopback.

    .venv/bin/python bench/protocol.py [--latency-n 10000] [--closed-n 4000]
                                       [--flood-n 20000] [--window 64] [--rounds 10]
                                       [--meters N] [--chart FILE] [--settle-s 1]

Starts its own Mosquitto (``set_tcp_nodelay true``, ``max_queued_messages 0``) on a free
127.0.0.1 port, then measures two servers, each in its own process with TCP_NODELAY on its
socket, in rounds that alternate between them (the machine's speed drifts; both must see it):

* **echo**: a raw MQTT client that publishes every request back (no parsing, no storage): the
  baseline, what the broker and the MQTT client library cost on their own;
* **agent**: ``gridguard edge run`` on ``examples/edge.toml`` with durable SQLite (WAL,
  synchronous=FULL), answering update commands (each one committed before its reply is
  published; list/post coalesced after changes), its control loop running.

Both get the same update command payloads from the same measuring client (:class:`Requester`:
no parsing, replies matched by mid), so what differs is the server. Three numbers per server:
p50/p99/p99.9 round trip of sequential requests; requests per second in a closed loop with
``--window`` in flight; and the sustained rate under a flood published by ``mosquitto_pub``
(C, 64 in flight to the broker), replies counted by ``mosquitto_sub`` (a Python load generator
would cost as much CPU per request as the server it measures, on the same 2 cores). A third
row measures the agent through the Python SDK (``StrategyClient``), what a platform script sees.

With ``--meters N`` the agent runs a site of N gateway meters with a PCS behind each (100 unit
ids per Modbus endpoint, as behind a gateway), served by ``gridguard sim run`` in its own
process, with a strategy on every meter: its control loop reads N meters and N PCS and writes N
setpoints each second while the commands are measured (the row says so).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import random
import socket
import sqlite3
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
from functools import partial
from http import HTTPStatus
from pathlib import Path
from typing import Any, Self

import aiomqtt
import tomli_w

from gridguard.client import StrategyClient
from gridguard.mqtt.session import NODELAY_OPTION, forwarding_queue
from gridguard.protocol.codec import json_bytes
from gridguard.protocol.models import CreateResult
from gridguard.protocol.topics import TopicScheme, build_topic
from gridguard.testing.examples import CREATE_DATA
from gridguard.testing.mosquitto import MosquittoProcess
from gridguard.testing.sites import many_meters_site, start_simulator, stop_simulator

ROOT = Path(__file__).resolve().parents[1]
SCHEME = TopicScheme("custom", prefix="bench/gridguard")
DEVICE = "gg-bench-001"
CREATE = CREATE_DATA
ECHO = "raw MQTT echo (baseline)"
AGENT = "gridguard edge agent, update (SQLite FULL)"
SDK = "the same agent, through the Python SDK"
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


class Requester:
    """The measuring client, the same for every server: publishes a request and awaits the
    message that answers it, matched by the request's mid (the agent's result carries it as
    ``reply``, the echo hands the request itself back). Nothing is parsed, so a difference
    between two servers is theirs, not the client's."""

    def __init__(self, port: int, request_topic: str, reply_topic: str) -> None:
        self._request_topic = request_topic
        self._reply_topic = reply_topic
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
        await self._client.subscribe(self._reply_topic, qos=1)
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
        future = self._pending.pop(mid_answered(payload), None)
        if future and not future.done():
            future.set_result(None)

    async def request(self, strategy_id: int) -> None:
        mid = str(uuid.uuid4())
        payload = update_payload(strategy_id, random.randrange(1000), mid)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending[mid.encode()] = future
        await self._client.publish(self._request_topic, payload, qos=1, timeout=math.inf)
        await asyncio.wait_for(future, 30)


def mid_answered(payload: bytes) -> bytes:
    """The mid a message answers: its ``reply`` (an agent's result) or else its own ``mid``
    (the echo's copy of the request); compact JSON as both sides write it."""
    for key in (b'"reply":"', b'"mid":"'):
        start = payload.find(key)
        if start >= 0:
            start += len(key)
            return payload[start : payload.find(b'"', start)]
    return b""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


UNITS_PER_ENDPOINT = 25
STATUS_INTERVAL_S = 5


async def control_state(port: int) -> str:
    """What the agent's control loop did, from its next status/post: cycles and who answered."""
    topic = build_topic(SCHEME, DEVICE, "status", "post")
    async with aiomqtt.Client("127.0.0.1", port) as client:
        await client.subscribe(topic, qos=0)
        async with asyncio.timeout(3 * STATUS_INTERVAL_S):
            async for message in client.messages:
                payload = message.payload if isinstance(message.payload, bytes) else b"{}"
                status = json.loads(payload)
                meters = status.get("meters", [])
                read = sum(1 for m in meters if m.get("grid_power_kw") is not None)
                devices = status.get("devices", [])
                online = sum(1 for d in devices if d.get("online"))
                return (
                    f"control loop at the end: cycle {status.get('cycle')}, {read} of "
                    f"{len(meters)} meters read, {online} of {len(devices)} PCS online"
                )
    return "control loop: no status"


def site_document(meters: int) -> dict[str, Any]:
    """examples/edge.toml, or (``meters`` > 0) a site of that many meters on free ports."""
    if not meters:
        data: dict[str, Any] = tomllib.loads((ROOT / "examples" / "edge.toml").read_text())
        return data
    endpoints = -(-meters // UNITS_PER_ENDPOINT)
    ports = [free_port() for _ in range(endpoints)]
    return many_meters_site(meters, ports=ports, units_per_endpoint=UNITS_PER_ENDPOINT)


def agent_config(folder: Path, port: int, meters: int = 0) -> Path:
    data = site_document(meters)
    data["device"]["uid"] = DEVICE
    data.setdefault("mqtt", {})
    data.setdefault("store", {})
    data["mqtt"].update(
        {
            "url": f"mqtt://127.0.0.1:{port}",
            "prefix": "bench/gridguard",
            # with a site under control, its status says whether the loop really reads it
            "status_enabled": bool(meters),
            "status_interval_s": STATUS_INTERVAL_S,
        }
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
    def per_s(self) -> float | None:
        return self.requests / self.seconds if self.seconds else None


@dataclass
class Samples:
    """One server's measurements, gathered over interleaved rounds."""

    latency_ms: list[float] = field(default_factory=list)
    closed: Rate = field(default_factory=Rate)
    flood: Rate = field(default_factory=Rate)

    def row(self) -> dict[str, float | None]:
        return {
            "p50_ms": percentile(self.latency_ms, 0.5),
            "p99_ms": percentile(self.latency_ms, 0.99),
            "p99.9_ms": percentile(self.latency_ms, 0.999),
            "closed_per_s": self.closed.per_s,
            "flood_per_s": self.flood.per_s,
        }


def percentile(values: list[float], share: float) -> float:
    """The value that ``share`` of ``values`` do not exceed (nearest rank)."""
    ordered = sorted(values)
    return ordered[int(share * (len(ordered) - 1))]


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

    def __init__(self, name: str, port: int, strategy_id: int = 0, *, sdk: bool = False) -> None:
        self.name = name
        self.port = port
        self.strategy_id = strategy_id
        self.sdk = sdk
        self.samples = Samples()
        if name == ECHO:
            self.request_topic, self.reply_topic = "bench/echo/req", "bench/echo/resp"
        else:
            self.request_topic = build_topic(SCHEME, DEVICE, "update", "command")
            self.reply_topic = build_topic(SCHEME, DEVICE, "update", "result")

    @asynccontextmanager
    async def requests(self) -> AsyncIterator[Request]:
        if not self.sdk:
            async with Requester(self.port, self.request_topic, self.reply_topic) as requester:
                yield partial(requester.request, self.strategy_id)
            return
        client = StrategyClient(f"mqtt://127.0.0.1:{self.port}", SCHEME, DEVICE, timeout_s=30)
        async with client as ems:

            async def update() -> None:
                mid = str(uuid.uuid4())
                payload = update_payload(self.strategy_id, random.randrange(1000), mid)
                await ems.send_raw("update", payload, mid)

            yield update

    async def measure(
        self, sequential_n: int, closed_n: int, window: int, settle_s: float = SETTLE_S
    ) -> None:
        await asyncio.sleep(settle_s)
        async with self.requests() as request:
            await sequential(request, WARM_UP, [])  # a fresh connection, idle CPUs, caches
            await sequential(request, sequential_n, self.samples.latency_ms)
            await windowed(request, closed_n, window, self.samples.closed)

    def measure_flood(self, n: int, settle_s: float = SETTLE_S) -> None:
        lines = [update_payload(self.strategy_id, i) for i in range(n)]
        time.sleep(settle_s)
        started = time.perf_counter()
        replies = flood(self.port, self.request_topic, self.reply_topic, lines)
        self.samples.flood.add(n, time.perf_counter() - started)
        if self.name != ECHO:
            refused = [r for r in replies if b'"code":200' not in r]
            if refused:
                raise SystemExit(f"the agent refused {len(refused)} updates: {refused[0]!r}")


async def create_strategy(port: int, meters: int = 0) -> int:
    """The strategy the updates change, created once the agent answers: tries every second
    with one mid, so a create that was slow, not lost, is answered from the agent's reply table
    (D5) instead of refused as a second strategy on the same meter. With ``meters``, one
    strategy on every meter (update_all), the first of which the updates change."""
    mid = str(uuid.uuid4())
    async with StrategyClient(f"mqtt://127.0.0.1:{port}", SCHEME, DEVICE, timeout_s=1) as ems:
        for _ in range(60):
            try:
                if meters:
                    items = [{**CREATE, "ele_meter_id": m + 1} for m in range(meters)]
                    created = await ems.request("update_all", items, mid=mid)
                else:
                    created = await ems.request("create", CREATE, mid=mid)
            except TimeoutError:
                continue
            if created.code != HTTPStatus.OK.value:
                raise SystemExit(f"create refused: {created.msg}")
            if meters:
                return 1
            assert isinstance(created, CreateResult)
            assert created.data is not None
            return created.data.id
    raise SystemExit("the agent did not answer within a minute")


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


def interleaved(
    servers: list[Server], disk: DiskCommits, args: argparse.Namespace, *, floods: bool = True
) -> None:
    """Rounds that alternate between the servers (and which goes first), so both see the same
    machine: on a shared VM the speed of everything drifts by tens of percent within minutes,
    and a baseline measured before the agent would not be a baseline of the agent's moment."""
    rounds = args.rounds
    for index in range(rounds):
        order = servers if index % 2 == 0 else servers[::-1]
        for server in order:
            asyncio.run(
                server.measure(
                    args.latency_n // rounds, args.closed_n // rounds, args.window, args.settle_s
                )
            )
        disk.measure(args.latency_n // rounds)
        if floods:
            flood_round(order, args)
        print(f"  round {index + 1}/{rounds} done", file=sys.stderr)


def flood_round(order: list[Server], args: argparse.Namespace) -> None:
    for server in order:
        if not server.sdk:  # the SDK's sustained rate would be the load generator's
            server.measure_flood(args.flood_n // args.rounds, args.settle_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-n", type=int, default=10000, help="sequential requests each")
    parser.add_argument("--closed-n", type=int, default=4000, help="closed-loop requests each")
    parser.add_argument("--flood-n", type=int, default=20000, help="flooded requests each")
    parser.add_argument("--window", type=int, default=64, help="closed-loop requests in flight")
    parser.add_argument("--rounds", type=int, default=10, help="alternations echo/agent")
    parser.add_argument("--chart", type=Path, help="also draw the round trips into this PNG")
    parser.add_argument(
        "--settle-s",
        type=float,
        default=SETTLE_S,
        help="pause before each measurement (0 only for a smoke run: samples then overlap)",
    )
    parser.add_argument(
        "--meters", type=int, default=0, help="site of N meters under control (simulated)"
    )
    args = parser.parse_args()
    agent_name = (
        AGENT if not args.meters else f"{AGENT[: -len(' (SQLite FULL)')]}, {args.meters} meters"
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        # A flood outruns the servers: the broker must queue, not drop (its default keeps 1,000
        # messages per client beyond those in flight and drops the rest, QoS 1 or not).
        broker = MosquittoProcess(folder / "mosquitto", general="max_queued_messages 0\n")
        broker.start()
        ctx = multiprocessing.get_context("spawn")
        ready = ctx.Event()
        echo = ctx.Process(target=echo_server, args=(broker.port, ready), daemon=True)
        config = agent_config(folder, broker.port, args.meters)
        simulator = None
        if args.meters:
            site_ports = {m["modbus"]["port"] for m in tomllib.loads(config.read_text())["meters"]}
            simulator = start_simulator(config, sorted(site_ports), keep_output=False)
        agent = subprocess.Popen(
            [
                *(sys.executable, "-m", "gridguard", "edge", "run"),
                *("--config", str(config), "--log-level", "error"),
            ],
        )
        try:
            echo.start()
            ready.wait(10)
            strategy_id = asyncio.run(create_strategy(broker.port, args.meters))
            servers = [
                Server(ECHO, broker.port),
                Server(agent_name, broker.port, strategy_id),
                Server(SDK, broker.port, strategy_id, sdk=True),
            ]
            print(
                f"measuring the raw MQTT echo and the edge agent in {args.rounds} "
                "alternating rounds ...",
                file=sys.stderr,
            )
            disk = DiskCommits(folder)
            # With a site under control, the floods come last: a flood saturates the agent, its
            # Modbus reads time out and the devices back off for seconds, so latency rounds
            # after a flood would be measured with a control loop that has nothing to read.
            interleaved(servers, disk, args, floods=not args.meters)
            control = asyncio.run(control_state(broker.port)) if args.meters else ""
            if args.meters:
                for index in range(args.rounds):
                    flood_round(servers if index % 2 == 0 else servers[::-1], args)
        finally:
            agent.terminate()
            agent.wait(10)
            if simulator is not None:
                stop_simulator(simulator)
            echo.terminate()
            broker.stop()
    print_table(servers, disk.latency_ms, args)
    if control:
        print(control)
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

    fig, ax = plt.subplots(figsize=(8, 5.2), layout="constrained")
    for name, values in latency_ms.items():
        ordered = sorted(values)
        share = [(i + 0.5) / len(ordered) for i in range(len(ordered))]
        style = "-" if name == ECHO or name.startswith(AGENT[:20]) else ":"
        ax.plot(ordered, share, style, label=name, linewidth=2)
    target_ms = 3 * percentile(latency_ms[ECHO], 0.99)
    ax.axvline(
        target_ms,
        color="firebrick",
        linestyle="--",
        linewidth=1,
        label="target: agent p99 at most 3 x echo p99",
    )
    for level in (0.5, 0.99):
        ax.axhline(level, color="grey", linewidth=0.5)
    ax.set_xscale("log")
    plain = mpl.ticker.FuncFormatter(lambda value, _: f"{value:g}")
    ax.xaxis.set_major_formatter(plain)
    ax.xaxis.set_minor_formatter(
        mpl.ticker.FuncFormatter(lambda value, _: f"{value:g}" if f"{value:g}"[-1] in "25" else "")
    )
    everything = [v for values in latency_ms.values() for v in values]
    ax.set_xlim(
        min(everything) * 0.8, max(percentile(v, 0.9995) for v in latency_ms.values()) * 1.5
    )
    ax.set_yscale("logit")  # the tail gets as much room as the middle
    ax.set_ylim(0.01, 0.9995)
    ax.set_yticks([0.01, 0.1, 0.5, 0.9, 0.99, 0.999])
    ax.yaxis.set_major_formatter(mpl.ticker.FuncFormatter(lambda value, _: f"p{value * 100:g}"))
    ax.yaxis.set_minor_formatter(mpl.ticker.NullFormatter())
    ax.set_xlabel("round trip of one command, ms (log scale)")
    ax.set_ylabel("answered within (percentile)")
    ax.set_title("Sequential QoS 1 round trips through Mosquitto on 127.0.0.1")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)


def print_table(servers: list[Server], disk_ms: list[float], args: argparse.Namespace) -> None:
    print(
        f"\nQoS 1 through Mosquitto on 127.0.0.1 (set_tcp_nodelay true); each server: "
        f"{args.latency_n} sequential requests, {args.closed_n} closed-loop ({args.window} in "
        f"flight), {args.flood_n} flooded (mosquitto_pub -M 64); {args.rounds} rounds "
        "alternating between them; one measuring client for echo and agent"
    )
    columns = ("p50 ms", "p99 ms", "p99.9 ms", "closed-loop/s", "sustained/s")
    print(f"| {'server':<44} | " + " | ".join(columns) + " |")
    print(f"|{'-' * 46}|" + "|".join("-" * (len(c) + 2) for c in columns) + "|")
    rows = [(s.name, s.samples.row()) for s in servers]
    disk_row: dict[str, float | None] = {
        f"p{q * 100:g}_ms": percentile(disk_ms, q) for q in (0.5, 0.99, 0.999)
    }
    for name, row in [*rows, (DISK, disk_row)]:
        cells = [
            f"{row[key]:.2f}" if row.get(key) is not None else "-"
            for key in ("p50_ms", "p99_ms", "p99.9_ms")
        ] + [
            f"{row[key]:,.0f}" if row.get(key) is not None else "-"
            for key in ("closed_per_s", "flood_per_s")
        ]
        print(
            f"| {name:<44} | "
            + " | ".join(f"{cell:>{len(c)}}" for cell, c in zip(cells, columns, strict=True))
            + " |"
        )
    echo, agent = servers[0].samples, servers[1].samples
    ratio = percentile(agent.latency_ms, 0.99) / percentile(echo.latency_ms, 0.99)
    print(f"\np99 ratio agent/echo: {ratio:.2f} (target <= 3)")
    print(f"agent sustained: {agent.flood.per_s or 0:,.0f} commands/s (target >= 2,000)")


if __name__ == "__main__":
    main()
