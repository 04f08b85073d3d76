"""What an asyncio MQTT client costs per received message and per connection.

    .venv/bin/python bench/mqtt_clients.py [--clients 1000] [--messages 20000]
                                           [--only NAME ...]

Chooses the client library of the fleet simulator (``gridguard sim fleet``), which holds
thousands of connections in one process on a 2-core machine. Starts a Mosquitto of its own on
a free 127.0.0.1 port (file limit raised to the hard limit, so it accepts every client), then
runs each candidate in a fresh process of its own (RSS never shrinks, so processes must not be
shared) and measures, per candidate:

* **connect**: wall time to connect ``--clients`` clients (MQTT 3.1.1, clean session, at most
  200 connecting at once), then to subscribe each to the five command topics of a device;
* **KiB/client**: RSS growth over those connected, subscribed clients, per client (and what
  10,000 would take);
* **CPU us/msg**: process CPU time per received QoS 1 message (PUBACK included) while one of
  those clients receives ``--messages`` messages of 400 bytes from ``mosquitto_pub`` (C, in
  its own process, so the publisher's CPU is not counted).

aiomqtt (the project's client, paho underneath) is the baseline of the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import resource
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from gridguard.mqtt.lite import LiteClient
from gridguard.protocol.topics import COMMAND_OPS
from gridguard.testing.mosquitto import MosquittoProcess

HOST = "127.0.0.1"
PAYLOAD_BYTES = 400
CONNECT_CONCURRENCY = 200
PAGE_BYTES = resource.getpagesize()

Sink = Callable[[], None]


def raise_file_limit() -> int:
    """Raise the soft limit on open files to the hard one; return it."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def rss_bytes() -> int:
    with Path("/proc/self/statm").open(encoding="ascii") as statm:
        return int(statm.read().split()[1]) * PAGE_BYTES


def command_topics(uid: str) -> list[str]:
    return [f"bench/fleet/{uid}/streaming_overdemand/{op}/command" for op in COMMAND_OPS]


# --- candidates: connect(port, client_id) -> handle; subscribe(handle, topics, sink) ----------


async def aiomqtt_connect(port: int, client_id: str) -> Any:
    import aiomqtt  # noqa: PLC0415

    client = aiomqtt.Client(HOST, port, identifier=client_id, keepalive=60)
    await client.__aenter__()
    return client


async def aiomqtt_subscribe(client: Any, topics: list[str], sink: Sink | None) -> None:
    await client.subscribe([(t, 1) for t in topics])
    if sink is not None:

        async def consume() -> None:
            async for _ in client.messages:
                sink()

        client.bench_task = asyncio.create_task(consume())


async def gmqtt_connect(port: int, client_id: str) -> Any:
    import gmqtt  # noqa: PLC0415
    from gmqtt.mqtt.constants import MQTTv311  # noqa: PLC0415

    client = gmqtt.Client(client_id)
    client.on_message = lambda *_: 0
    await client.connect(HOST, port, keepalive=60, version=MQTTv311)
    return client


async def gmqtt_subscribe(client: Any, topics: list[str], sink: Sink | None) -> None:
    import gmqtt  # noqa: PLC0415

    if sink is not None:

        def on_message(*_: object) -> int:
            sink()
            return 0

        client.on_message = on_message
    client.subscribe([gmqtt.Subscription(t, qos=1) for t in topics])
    await asyncio.sleep(0)


async def amqtt_connect(port: int, client_id: str) -> Any:
    from amqtt.client import MQTTClient  # noqa: PLC0415

    config = {"auto_reconnect": False, "keep_alive": 60}
    client = MQTTClient(client_id=client_id, config=config)
    await client.connect(f"mqtt://{HOST}:{port}/")
    return client


async def amqtt_subscribe(client: Any, topics: list[str], sink: Sink | None) -> None:
    await client.subscribe([(t, 1) for t in topics])
    if sink is not None:

        async def consume() -> None:
            while True:
                await client.deliver_message()
                sink()

        client.bench_task = asyncio.create_task(consume())


async def aio_mqtt_connect(port: int, client_id: str) -> Any:
    import aio_mqtt  # noqa: PLC0415

    client = aio_mqtt.Client()
    await client.connect(HOST, port, keepalive=60, client_id=client_id)
    return client


async def aio_mqtt_subscribe(client: Any, topics: list[str], sink: Sink | None) -> None:
    import aio_mqtt  # noqa: PLC0415

    await client.subscribe(*[(t, aio_mqtt.QOSLevel.QOS_1) for t in topics])
    if sink is not None:

        async def consume() -> None:
            async for _ in client.delivered_messages("#"):
                sink()

        client.bench_task = asyncio.create_task(consume())


async def lite_connect(port: int, client_id: str) -> Any:
    client = LiteClient(client_id, lambda *_: None, keepalive_s=60)
    await client.connect(HOST, port)
    return client


async def lite_subscribe(client: Any, topics: list[str], sink: Sink | None) -> None:
    if sink is not None:
        client.on_message = lambda *_: sink()
    await client.subscribe([(t, 1) for t in topics])


Connect = Callable[[int, str], Awaitable[Any]]
Subscribe = Callable[[Any, list[str], Sink | None], Awaitable[None]]
CANDIDATES: dict[str, tuple[str, Connect, Subscribe]] = {
    "aiomqtt": ("aiomqtt 2.x (paho), the baseline", aiomqtt_connect, aiomqtt_subscribe),
    "gmqtt": ("gmqtt", gmqtt_connect, gmqtt_subscribe),
    "amqtt": ("amqtt's MQTTClient", amqtt_connect, amqtt_subscribe),
    "aio_mqtt": ("aio-mqtt-mod", aio_mqtt_connect, aio_mqtt_subscribe),
    "lite": ("gridguard.mqtt.lite", lite_connect, lite_subscribe),
}


# --- one candidate, in its own process --------------------------------------------------------


async def connect_all(connect: Connect, port: int, count: int) -> tuple[list[Any], float]:
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    run = uuid.uuid4().hex[:8]

    async def one(index: int) -> Any:
        async with gate:
            return await connect(port, f"bench-{run}-{index}")

    started = time.perf_counter()
    clients = await asyncio.gather(*(one(i) for i in range(count)))
    return list(clients), time.perf_counter() - started


async def receive_cost_us(client: Any, subscribe: Subscribe, port: int, messages: int) -> float:
    """CPU us per message from the first received message to the last."""
    done = asyncio.Event()
    state = {"count": 0, "cpu_first": 0.0, "cpu_last": 0.0}

    def sink() -> None:
        state["count"] += 1
        if state["count"] == 1:
            state["cpu_first"] = time.process_time()
        if state["count"] == messages:
            state["cpu_last"] = time.process_time()
            done.set()

    topic = f"bench/receive/{uuid.uuid4().hex}"
    await subscribe(client, [topic], sink)
    await asyncio.sleep(0.2)  # the SUBACK (gmqtt's subscribe does not wait for it)
    line = ("x" * (PAYLOAD_BYTES - 1) + "\n").encode()
    publisher = await asyncio.create_subprocess_exec(
        "mosquitto_pub",
        "-h",
        HOST,
        "-p",
        str(port),
        "-q",
        "1",
        "-t",
        topic,
        "-l",
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    assert publisher.stdin is not None
    publisher.stdin.write(line * messages)
    await publisher.stdin.drain()
    publisher.stdin.close()
    await asyncio.wait_for(done.wait(), timeout=300)
    await publisher.wait()
    return (state["cpu_last"] - state["cpu_first"]) / (messages - 1) * 1e6


async def worker(name: str, port: int, clients: int, messages: int) -> dict[str, float]:
    _, connect, subscribe = CANDIDATES[name]
    await connect(port, f"bench-warm-{uuid.uuid4().hex[:8]}")  # imports and first-use caches
    gc.collect()
    rss_before = rss_bytes()
    connected, connect_s = await connect_all(connect, port, clients)
    started = time.perf_counter()
    for index, client in enumerate(connected):
        await subscribe(client, command_topics(f"dev{index}"), None)
    subscribe_s = time.perf_counter() - started
    await asyncio.sleep(0.5)
    gc.collect()
    kib_per_client = (rss_bytes() - rss_before) / clients / 1024
    cpu_us = await receive_cost_us(connected[0], subscribe, port, messages)
    return {
        "connect_s": connect_s,
        "subscribe_s": subscribe_s,
        "kib_per_client": kib_per_client,
        "cpu_us_per_msg": cpu_us,
    }


# --- the run ---------------------------------------------------------------------------------


def run_candidate(name: str, port: int, clients: int, messages: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--worker", name, "--port", str(port)]
    command += ["--clients", str(clients), "--messages", str(messages)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=True)
    except subprocess.CalledProcessError as exc:
        return {"error": (exc.stderr.strip().splitlines() or ["failed"])[-1]}
    except subprocess.TimeoutExpired:
        return {"error": "timed out"}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def print_table(rows: dict[str, dict[str, Any]], clients: int) -> None:
    head = f"{'client':34} {'connect ' + str(clients):>13} {'subscribe':>10}"
    print(f"{head} {'KiB/client':>11} {'10k: MiB':>9} {'CPU us/msg':>11} {'x baseline':>11}")
    base = rows.get("aiomqtt", {}).get("cpu_us_per_msg")
    for name, row in rows.items():
        label = CANDIDATES[name][0]
        if "error" in row:
            print(f"{label:34} error: {row['error']}")
            continue
        ratio = f"{row['cpu_us_per_msg'] / base:.2f}" if base else "-"
        print(
            f"{label:34} {row['connect_s']:>12.2f}s {row['subscribe_s']:>9.2f}s "
            f"{row['kib_per_client']:>11.1f} {row['kib_per_client'] * 10000 / 1024:>9.0f} "
            f"{row['cpu_us_per_msg']:>11.1f} {ratio:>11}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--only", nargs="*", choices=sorted(CANDIDATES), default=None)
    parser.add_argument("--worker", choices=sorted(CANDIDATES), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    raise_file_limit()
    if args.worker:
        result = asyncio.run(worker(args.worker, args.port, args.clients, args.messages))
        print(json.dumps(result))
        return
    broker = MosquittoProcess(general="max_queued_messages 0\n")
    broker.start()
    try:
        names = args.only or list(CANDIDATES)
        rows = {n: run_candidate(n, broker.port, args.clients, args.messages) for n in names}
    finally:
        broker.remove()
    print_table(rows, args.clients)


if __name__ == "__main__":
    main()
