"""Command round trip and sustained throughput through Mosquitto on loopback.

    .venv/bin/python bench/protocol.py [--latency-n 1000] [--throughput-n 5000] [--window 64]

Starts its own Mosquitto (``set_tcp_nodelay true``) on a free 127.0.0.1 port, then measures
two servers in separate processes, each with TCP_NODELAY on its socket:

* **echo**: a raw MQTT client that publishes every request back (no parsing, no storage): the
  baseline, what the broker and the MQTT client library cost on their own;
* **agent**: ``gridguard edge run`` with durable SQLite (WAL, synchronous=FULL), answering
  update commands (each one a committed transaction plus a list/post report).

Prints one table: p50/p99 round trip of sequential requests, and requests per second with
``--window`` requests in flight.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Self

import aiomqtt
import tomli_w

from gridguard.client import StrategyClient
from gridguard.edge.link import NODELAY_OPTION
from gridguard.protocol.codec import json_bytes
from gridguard.protocol.topics import TopicScheme
from gridguard.testing.examples import CREATE_DATA
from gridguard.testing.mosquitto import MosquittoProcess

ROOT = Path(__file__).resolve().parents[1]
SCHEME = TopicScheme("custom", prefix="bench/gridguard")
DEVICE = "gg-bench-001"
CREATE = CREATE_DATA


def echo_server(port: int, ready: Any) -> None:
    """Process body: echo every message on bench/echo/req to bench/echo/resp."""

    async def main() -> None:
        async with aiomqtt.Client("127.0.0.1", port, socket_options=[NODELAY_OPTION]) as client:
            await client.subscribe("bench/echo/req", qos=1)
            ready.set()
            async for message in client.messages:
                payload = message.payload if isinstance(message.payload, bytes) else b""
                await client.publish("bench/echo/resp", payload, qos=1)

    asyncio.run(main())


class EchoClient:
    """Requester side of the echo baseline: correlates by a 16-byte id prefix."""

    def __init__(self, port: int) -> None:
        self._client = aiomqtt.Client("127.0.0.1", port, socket_options=[NODELAY_OPTION])
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
        async for message in self._client.messages:
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


async def measure(
    request: Callable[[], Awaitable[None]], latency_n: int, throughput_n: int, window: int
) -> dict[str, float]:
    for _ in range(50):  # warm-up
        await request()
    samples = []
    for _ in range(latency_n):
        started = time.perf_counter()
        await request()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    semaphore = asyncio.Semaphore(window)

    async def one() -> None:
        async with semaphore:
            await request()

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(throughput_n)))
    elapsed = time.perf_counter() - started
    return {
        "p50_ms": statistics.median(samples),
        "p99_ms": samples[int(0.99 * (len(samples) - 1))],
        "per_s": throughput_n / elapsed,
    }


async def bench_agent(port: int, args: argparse.Namespace) -> dict[str, float]:
    async with StrategyClient(f"mqtt://127.0.0.1:{port}", SCHEME, DEVICE, timeout_s=30) as ems:
        for _ in range(100):
            try:
                created = await ems.create(CREATE)
                break
            except TimeoutError:
                continue
        else:
            raise SystemExit("the agent did not answer")
        strategy_id = created.data.id if created.data else 1
        counter = iter(range(10**9))

        async def update() -> None:
            mid = str(uuid.uuid4())
            payload = json_bytes(
                {
                    "mid": mid,
                    "type": "streaming_overdemand_update",
                    "device_uid": DEVICE,
                    "timestamp": int(time.time() * 1000),
                    "data": {"id": strategy_id, "streaming_condition": next(counter) % 1000},
                }
            )
            await ems.send_raw("update", payload, mid)

        return await measure(update, args.latency_n, args.throughput_n, args.window)


async def bench_echo(port: int, args: argparse.Namespace) -> dict[str, float]:
    async with EchoClient(port) as echo:
        return await measure(echo.request, args.latency_n, args.throughput_n, args.window)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-n", type=int, default=1000)
    parser.add_argument("--throughput-n", type=int, default=5000)
    parser.add_argument("--window", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        broker = MosquittoProcess(folder / "mosquitto")
        broker.start()
        try:
            ctx = multiprocessing.get_context("spawn")
            ready = ctx.Event()
            echo = ctx.Process(target=echo_server, args=(broker.port, ready), daemon=True)
            echo.start()
            ready.wait(10)
            print("measuring raw MQTT echo baseline ...", file=sys.stderr)
            echo_result = asyncio.run(bench_echo(broker.port, args))
            echo.terminate()
            config = agent_config(folder, broker.port)
            agent = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gridguard",
                    "edge",
                    "run",
                    "--config",
                    str(config),
                    "--log-level",
                    "warning",
                ],
            )
            try:
                print("measuring the edge agent (SQLite, synchronous=FULL) ...", file=sys.stderr)
                agent_result = asyncio.run(bench_agent(broker.port, args))
            finally:
                agent.terminate()
                agent.wait(10)
        finally:
            broker.stop()
    print_table(echo_result, agent_result, args)


def print_table(echo: dict[str, float], agent: dict[str, float], args: argparse.Namespace) -> None:
    print(
        f"\nQoS 1 through Mosquitto on 127.0.0.1 (set_tcp_nodelay true), "
        f"{args.latency_n} sequential requests, {args.throughput_n} with {args.window} in flight"
    )
    print(f"| {'server':<44} | {'p50 ms':>7} | {'p99 ms':>7} | {'requests/s':>10} |")
    print(f"|{'-' * 46}|{'-' * 9}|{'-' * 9}|{'-' * 12}|")
    for name, row in [
        ("raw MQTT echo (baseline)", echo),
        ("gridguard edge agent, update (SQLite FULL)", agent),
    ]:
        print(
            f"| {name:<44} | {row['p50_ms']:>7.2f} | {row['p99_ms']:>7.2f} | "
            f"{row['per_s']:>10,.0f} |"
        )
    print(f"\np99 ratio agent/echo: {agent['p99_ms'] / echo['p99_ms']:.2f} (target <= 3)")
    print(f"agent throughput: {agent['per_s']:,.0f}/s (target >= 2,000)")


if __name__ == "__main__":
    main()
