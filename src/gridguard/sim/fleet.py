"""The fleet simulator: N simulated EMS in one process, each serving the strategy protocol.

``gridguard sim fleet --count 10000 --mqtt-url mqtt://127.0.0.1:1883`` gives the platform a
fleet to manage without 10,000 edge agents. Each EMS (:class:`SimDevice`) has its own MQTT
session (:class:`LiteClient`, a few KiB each: ``bench/mqtt_clients.py`` measured why not a
library's), subscribes to its five command topics, answers each command on ``{op}/result``
(QoS 1), publishes ``list/post`` retained on connect and after every change, and
``status/post`` every ``status_interval_s`` with values from a toy plant. Status reports are
spread evenly over the interval, so 10,000 devices at 2 s are a steady 5,000 messages/s.

One TaskGroup runs ``connectors`` workers that take devices off one queue and (re)connect
them, the status ticker and the statistics printer; a lost session puts its device back on
the queue after a jittered delay. Device ``n`` is ``{uid_prefix}-{n:05d}`` with site shape
``n % 4`` (``gridguard.sim.fleet_site``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import resource
import signal
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gridguard.mqtt.lite import LiteClient, LiteMqttError, Publication
from gridguard.mqtt.session import parse_mqtt_url
from gridguard.protocol.errors import TopicError
from gridguard.protocol.topics import (
    COMMAND_OPS,
    TopicScheme,
    check_device_uid,
    parse_topic,
)
from gridguard.sim.fleet_device import SimDevice
from gridguard.sim.fleet_site import shape_for

log = logging.getLogger("gridguard.sim.fleet")

TICK_S = 0.05
RECONNECT_MIN_S = 1.0
RECONNECT_MAX_S = 10.0
FD_HEADROOM = 64


@dataclass(frozen=True, slots=True)
class FleetConfig:
    count: int
    mqtt_url: str
    prefix: str = "v1/gridguard"
    uid_prefix: str = "sim"
    status_interval_s: float = 2.0
    keepalive_s: int = 60
    connectors: int = 64
    """Connections opened at once: Mosquitto listens with a backlog of 100, and SYNs beyond it
    wait a second for their retransmission."""
    stats_interval_s: float | None = 10.0
    """Period of the statistics line; None: no periodic line (the demo prints its own)."""
    first: int = 0
    """Number of the first device (several fleets on one broker use disjoint ranges)."""
    status_qos: int = 1
    """QoS of status/post (1, as the edge agent: a platform instance that dies loses none)."""

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError(f"count {self.count}: must be at least 1")
        if self.status_interval_s <= 0:
            raise ValueError(f"status_interval_s {self.status_interval_s}: must be > 0")
        if self.status_qos not in {0, 1}:
            raise ValueError(f"status_qos {self.status_qos}: 0 or 1")
        if self.stats_interval_s is not None and self.stats_interval_s <= 0:
            raise ValueError(f"stats_interval_s {self.stats_interval_s}: must be > 0 (or None)")
        TopicScheme("custom", prefix=self.prefix)  # refuses a bad prefix with its reason
        check_device_uid(uid_of(self, self.first))
        parse_mqtt_url(self.mqtt_url)


@dataclass(slots=True)
class FleetStats:
    connected: int = 0
    commands: int = 0
    replies: int = 0
    lists: int = 0
    statuses: int = 0
    reconnects: int = 0
    all_connected_s: float | None = None
    started: float = field(default_factory=time.monotonic)


def uid_of(config: FleetConfig, number: int) -> str:
    return f"{config.uid_prefix}-{number:05d}"


def raise_file_limit(needed: int) -> int:
    """Raise the soft open-files limit towards ``needed`` (up to the hard limit); return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if wanted > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        return wanted
    return soft


def rss_mib() -> float:
    with open("/proc/self/statm", encoding="ascii") as statm:  # noqa: PTH123 - hot, tiny
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


class Fleet:
    """The simulated devices and their sessions."""

    def __init__(
        self,
        config: FleetConfig,
        *,
        clock_ns: Callable[[], int] = time.time_ns,
        echo: Callable[[str], None] = print,
    ) -> None:
        self.config = config
        self._clock_ns = clock_ns
        self._echo = echo
        self._address = parse_mqtt_url(config.mqtt_url)
        self._ssl = ssl.create_default_context() if self._address.tls else None
        self.stats = FleetStats()
        self.all_connected = asyncio.Event()
        self.first_wave_done = asyncio.Event()
        """Set once as many connect attempts as devices have been made: the first wave is over
        (status/post starts then, so the wave is not slowed by reports)."""
        self._first_attempts = 0
        self._rng = random.Random(config.first)  # noqa: S311 - load shapes and jitter
        self.devices: dict[str, SimDevice] = {}
        for number in range(config.first, config.first + config.count):
            uid = uid_of(config, number)
            self.devices[uid] = SimDevice(
                uid,
                shape_for(number),
                scale=self._rng.uniform(0.6, 1.4),
                phase=self._rng.random(),
            )
        self._clients: dict[str, LiteClient] = {}
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        """Devices to connect; None ends a connector."""
        self._stopping = False

    @property
    def address_text(self) -> str:
        """host:port of the broker (never the credentials)."""
        return f"{self._address.host}:{self._address.port}"

    def topic(self, uid: str, op: str, direction: str) -> str:
        return f"{self.config.prefix}/{uid}/streaming_overdemand/{op}/{direction}"

    async def run(self, stop: asyncio.Event) -> None:
        """Connect every device and serve until ``stop`` is set; then disconnect them."""
        raise_file_limit(self.config.count + FD_HEADROOM)
        for uid in self.devices:
            self._queue.put_nowait(uid)
        try:
            async with asyncio.TaskGroup() as group:
                connectors = min(self.config.connectors, self.config.count)
                for index in range(connectors):
                    group.create_task(self._connector(), name=f"fleet-connector-{index}")
                group.create_task(self._end_connectors(stop, connectors), name="fleet-end")
                group.create_task(self._status_ticker(stop), name="fleet-status")
                group.create_task(self._stats_printer(stop), name="fleet-stats")
        finally:
            for client in self._clients.values():
                client.close()

    # --- sessions -----------------------------------------------------------------------------

    async def _connector(self) -> None:
        """Takes devices off the queue and connects them, until it takes the end mark."""
        while (uid := await self._queue.get()) is not None:
            try:
                await self._connect(uid)
            except (LiteMqttError, OSError) as exc:
                log.info("%s: connect failed (%s); retrying", uid, exc)
                self._retry_later(uid)
            finally:
                self._attempted()

    async def _end_connectors(self, stop: asyncio.Event, connectors: int) -> None:
        await stop.wait()
        self._stopping = True
        for _ in range(connectors):
            self._queue.put_nowait(None)

    def _attempted(self) -> None:
        if self._first_attempts < self.config.count:
            self._first_attempts += 1
            if self._first_attempts == self.config.count:
                self.first_wave_done.set()

    async def _connect(self, uid: str) -> None:
        address, config = self._address, self.config
        client = LiteClient(f"gridguard-{uid}", self._on_message, keepalive_s=config.keepalive_s)
        await client.connect(
            address.host,
            address.port,
            username=address.username,
            password=address.password,
            ssl_context=self._ssl,
            subscriptions=[(self.topic(uid, op, "command"), 1) for op in COMMAND_OPS],
            announce=[self._list_publication(self.devices[uid])],
        )
        self._clients[uid] = client
        self.stats.lists += 1
        assert client.closed is not None
        client.closed.add_done_callback(lambda _: self._lost(uid, client))
        self.stats.connected += 1
        if self.stats.connected == config.count and self.stats.all_connected_s is None:
            self.stats.all_connected_s = time.monotonic() - self.stats.started
            self.all_connected.set()
            self._echo(
                f"fleet: {config.count} devices connected in {self.stats.all_connected_s:.2f} s,"
                f" RSS {rss_mib():.1f} MiB"
            )

    def _lost(self, uid: str, client: LiteClient) -> None:
        if self._clients.get(uid) is not client:
            return
        del self._clients[uid]
        self.stats.connected -= 1
        assert client.closed is not None
        if client.closed.cancelled() or client.closed.exception() is None:
            return  # closed by us
        self.stats.reconnects += 1
        self._retry_later(uid)

    def _retry_later(self, uid: str) -> None:
        if self._stopping:
            return
        delay_s = self._rng.uniform(RECONNECT_MIN_S, RECONNECT_MAX_S)
        asyncio.get_running_loop().call_later(delay_s, self._queue.put_nowait, uid)

    # --- protocol -----------------------------------------------------------------------------

    def _on_message(self, client: LiteClient, topic: str, payload: bytes) -> None:
        try:
            parsed = parse_topic(topic)
        except TopicError:
            log.warning("ignoring message on unexpected topic %s", topic)
            return
        device = self.devices.get(parsed.device)
        if device is None or parsed.direction != "command":
            return
        self.stats.commands += 1
        answer = device.handle(parsed.op, payload, self._clock_ns())
        reply = Publication(self.topic(device.uid, parsed.op, "result"), answer.reply, qos=1)
        self.stats.replies += 1
        if answer.changed:  # the reply first, then the new list, in one write
            client.publish_many([reply, self._list_publication(device)])
            self.stats.lists += 1
        else:
            client.publish_many([reply])

    def _list_publication(self, device: SimDevice) -> Publication:
        payload = device.list_post(self._clock_ns())
        return Publication(self.topic(device.uid, "list", "post"), payload, qos=1, retain=True)

    async def _status_ticker(self, stop: asyncio.Event) -> None:
        """Every TICK_S, the status reports that fell due since the last tick (count / interval
        per second of them, each device in turn)."""
        await _wait_either(self.first_wave_done, stop)
        order = list(self.devices)
        interval_s = self.config.status_interval_s
        per_s = len(order) / interval_s
        loop = asyncio.get_running_loop()
        due, position, last = 0.0, 0, loop.time()
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), TICK_S)
            now = loop.time()
            due = min(due + (now - last) * per_s, len(order))  # late ticks catch up, once
            last = now
            now_ns = self._clock_ns()
            while due >= 1.0:
                due -= 1.0
                uid = order[position]
                position = (position + 1) % len(order)
                client = self._clients.get(uid)
                if client is not None and client.connected:
                    payload = self.devices[uid].status_post(now_ns, interval_s)
                    topic = self.topic(uid, "status", "post")
                    client.publish(topic, payload, qos=self.config.status_qos)
                    self.stats.statuses += 1

    async def _stats_printer(self, stop: asyncio.Event) -> None:
        interval_s = self.config.stats_interval_s
        if interval_s is None:
            return
        last = (time.monotonic(), time.process_time(), self.stats.statuses, self.stats.commands)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)
            now = (time.monotonic(), time.process_time(), self.stats.statuses, self.stats.commands)
            wall_s = now[0] - last[0]
            if wall_s > 0:
                s = self.stats
                self._echo(
                    f"fleet: {s.connected}/{self.config.count} connected, "
                    f"status {(now[2] - last[2]) / wall_s:.0f}/s, "
                    f"commands {(now[3] - last[3]) / wall_s:.0f}/s, "
                    f"CPU {(now[1] - last[1]) / wall_s * 100:.0f}%, RSS {rss_mib():.1f} MiB, "
                    f"reconnects {s.reconnects}"
                )
            last = now


async def _wait_either(first: asyncio.Event, second: asyncio.Event) -> None:
    waits = [asyncio.ensure_future(first.wait()), asyncio.ensure_future(second.wait())]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


async def run_fleet(config: FleetConfig, *, echo: Callable[[str], None] = print) -> None:
    """Run a fleet until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    fleet = Fleet(config, echo=echo)
    last = uid_of(config, config.first + config.count - 1)
    echo(
        f"fleet: {config.count} devices {uid_of(config, config.first)} .. {last} under "
        f"{config.prefix}/, broker {fleet.address_text}"
    )
    await fleet.run(stop)
