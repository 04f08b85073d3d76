"""The platform under load: ingest, the REST round trip, connect time, one instance killed.

    .venv/bin/python bench/platform.py [--quick] [--db sqlite|postgresql] [--counts 1000 10000]
                                       [--sections a b c d] [--chart docs/platform-ingest-lag.png]

Starts a Mosquitto of its own on a free 127.0.0.1 port; the platform (``gridguard platform
run``) and the fleet simulator (``gridguard sim fleet``) each run in their own process, so their
CPU and memory are read from /proc; the bench's process holds the measuring clients.

* **(a) ingest**: N simulated devices post status every 2 s (N/2 messages/s). Over a window the
  bench polls the samples table every 50 ms: a message counts as stored when its rows appear,
  its lag is that moment minus the ``at`` the device wrote. Baseline: ``mosquitto_sub`` (C, its
  own process) counting the same topic over the same window, i.e. what the broker delivers.
  Platform CPU per message = its CPU over the window / messages stored.
* **(b) round trip**: 100 devices, each with one strategy; ``--rate`` updates a second spread
  over them, open loop (sent on schedule, whatever is outstanding), in alternating rounds:
  ``raw`` publishes the same command bytes the platform would at QoS 1 and waits for the result
  (broker + device: the baseline), ``rest`` is ``PATCH /api/devices/{uid}/strategies/{id}``
  (audit row committed, command published, result recorded, desired set advanced, answer).
  ``seq`` rows repeat both one command at a time. Platform CPU per command is its CPU over the
  rest rounds less its idle rate (status ingest of the 100 devices), per command.
* **(c) connect**: from (a): wall time until the fleet reports every device connected and
  subscribed, and the fleet process's RSS then.
* **(d) kill**: two instances on one PostgreSQL (always), N devices posting status and the
  round-trip load sent to both instances in turn; halfway one instance gets SIGKILL. A
  reference subscriber in the bench records every status message the broker delivered; lost =
  delivered but never stored, before and after the kill. Commands: how many the bench sent,
  how many HTTP calls failed with the killed instance, and how many rows are still pending
  once the survivor's sweeper has had one timeout plus one sweep period.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import resource
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from gridguard.mqtt.lite import LiteClient
from gridguard.platform.commands import build_command
from gridguard.platform.database import Database, utc
from gridguard.platform.schema import commands, telemetry_samples
from gridguard.platform.security import Role
from gridguard.platform.users import create_token, create_user
from gridguard.protocol import codec
from gridguard.sim.fleet_site import shape_for
from gridguard.store.scratch import create_scratch_database, drop_scratch_database
from gridguard.testing.examples import CREATE_DATA
from gridguard.testing.mosquitto import MosquittoProcess, count_messages, free_port
from gridguard.testing.proc import cpu_s, rss_mib

ROOT = Path(__file__).resolve().parents[1]
CONNECTED_RE = re.compile(r"(\d+) devices connected in ([\d.]+) s")
POLL_S = 0.05
KILL_MARGIN_S = 2.0
STATUS = "streaming_overdemand/status/post"


def pct(samples: list[float], q: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


# --- processes -------------------------------------------------------------------------------


class Child:
    """A process of ours; its output lines are kept and can be waited for."""

    def __init__(self, args: list[str], name: str) -> None:
        self.name = name
        self.popen = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            with self._changed:
                self.lines.append(line.rstrip())
                self._changed.notify_all()

    def wait_line(self, pattern: re.Pattern[str], timeout_s: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout_s
        seen = 0
        with self._changed:
            while True:
                for line in self.lines[seen:]:
                    if found := pattern.search(line):
                        return found
                seen = len(self.lines)
                left = deadline - time.monotonic()
                if left <= 0 or self.popen.poll() is not None:
                    tail = "\n".join(self.lines[-15:])
                    raise RuntimeError(f"{self.name}: no {pattern.pattern!r}; last output:\n{tail}")
                self._changed.wait(left)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
        try:
            self.popen.wait(30)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()


@dataclass
class Platform:
    child: Child
    url: str

    @property
    def pid(self) -> int:
        return self.child.pid


def start_platform(db_url: str, broker: str, prefix: str, timeout_s: float) -> Platform:
    port = free_port()
    args = [sys.executable, "-m", "gridguard", "platform", "run", "--db", db_url]
    args += ["--mqtt-url", broker, "--listen", f"127.0.0.1:{port}", "--prefix", prefix]
    args += ["--command-timeout-s", str(timeout_s), "--log-level", "warning"]
    return Platform(Child(args, f"platform:{port}"), f"http://127.0.0.1:{port}")


def start_fleet(broker: str, prefix: str, count: int, *, first: int = 0) -> Child:
    args = [sys.executable, "-m", "gridguard", "sim", "fleet", "--count", str(count)]
    args += ["--mqtt-url", broker, "--prefix", prefix, "--first", str(first)]
    args += ["--status-interval-s", "2", "--stats-interval-s", "5"]
    return Child(args, f"fleet:{count}")


async def operator_token(db_url: str) -> str:
    """Migrate the database and make an operator with a token (before any platform starts)."""
    db = Database(db_url)
    await db.open()
    try:
        now = datetime.now(UTC)
        user = await create_user(
            db, name="bench", password="bench-password", role=Role.OPERATOR, now=now
        )
        return (await create_token(db, user_id=user.id, name="bench", now=now)).token
    finally:
        await db.close()


async def devices_known(http: httpx.AsyncClient, count: int, timeout_s: float) -> None:
    """Wait until the platform answers and has registered ``count`` devices."""
    deadline = time.monotonic() + timeout_s
    while True:
        with contextlib.suppress(httpx.TransportError):
            response = await http.get("/api/devices", params={"limit": 1})
            if response.status_code == 200 and response.json()["total"] >= count:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{http.base_url}: {count} devices not registered in {timeout_s} s")
        await asyncio.sleep(0.2)


def client(url: str, token: str) -> httpx.AsyncClient:
    # keep-alive shorter than uvicorn's 5 s: a connection reused just as the server closes it
    # idle fails with ReadError (it did, on a loaded machine, between rounds)
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64, keepalive_expiry=2.0)
    return httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {token}"}, limits=limits, timeout=30
    )


@contextlib.asynccontextmanager
async def database(kind: str, folder: Path, name: str) -> Any:
    if kind == "sqlite":
        yield f"sqlite:///{folder / f'{name}.db'}"
        return
    url = await create_scratch_database(prefix=f"ggbench_{name}")
    try:
        yield url
    finally:
        await drop_scratch_database(url)


# --- (a) ingest ------------------------------------------------------------------------------


@dataclass
class Stored:
    """Status messages seen appearing in the samples table: (uid, at) -> when it appeared."""

    first_seen: dict[tuple[str, datetime], float] = field(default_factory=dict)
    lag_by_poll: list[tuple[float, float]] = field(default_factory=list)
    """(poll time, worst lag of the messages that appeared in it), for the chart."""


async def poll_samples(db: Database, stored: Stored, stop: asyncio.Event) -> None:
    t = telemetry_samples.c
    async with db.read() as conn:
        last_id = (await conn.scalar(sa.select(sa.func.max(t.id)))) or 0
    while not stop.is_set():
        async with db.read() as conn:
            rows = (
                await conn.execute(sa.select(t.id, t.device_uid, t.at).where(t.id > last_id))
            ).all()
        now = time.time()
        worst = 0.0
        for row in rows:
            last_id = max(last_id, row.id)
            key = (row.device_uid, utc(row.at))
            if key not in stored.first_seen:
                stored.first_seen[key] = now
                worst = max(worst, now - key[1].timestamp())
        if rows:
            stored.lag_by_poll.append((now, worst))
        await asyncio.sleep(POLL_S)


def poll_sqlite(path: str, stored: Stored, stop: threading.Event) -> None:
    """:func:`poll_samples` through the standard library's sqlite3, in a thread: at 5,000
    messages/s the SQLAlchemy poller took enough of the shared CPU to slow the platform."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        last_id = conn.execute("SELECT coalesce(max(id), 0) FROM telemetry_samples").fetchone()[0]
        while not stop.is_set():
            rows = conn.execute(
                "SELECT id, device_uid, at FROM telemetry_samples WHERE id > ?", (last_id,)
            ).fetchall()
            now, worst = time.time(), 0.0
            for row_id, uid, at_text in rows:
                last_id = max(last_id, row_id)
                at = datetime.fromisoformat(at_text).replace(tzinfo=UTC)
                if (uid, at) not in stored.first_seen:
                    stored.first_seen[(uid, at)] = now
                    worst = max(worst, now - at.timestamp())
            if rows:
                stored.lag_by_poll.append((now, worst))
            stop.wait(POLL_S)


@dataclass(frozen=True, slots=True)
class IngestRow:
    count: int
    connect_s: float
    fleet_rss_mib: float
    asked_per_s: float
    delivered_per_s: float
    stored_per_s: float
    lag_p50_s: float
    lag_p99_s: float
    lag_max_s: float
    cpu_us_per_msg: float
    platform_rss_mib: float
    lag_series: list[tuple[float, float]]


async def ingest(
    args: argparse.Namespace, broker: MosquittoProcess, folder: Path, count: int
) -> IngestRow:
    prefix = f"bench-{uuid.uuid4().hex[:6]}"
    async with database(args.db, folder, f"ingest{count}") as db_url:
        token = await operator_token(db_url)
        platform = start_platform(db_url, broker.url, prefix, args.timeout_s)
        fleet = start_fleet(broker.url, prefix, count)
        db = Database(db_url)
        await db.open()
        try:
            found = await asyncio.to_thread(fleet.wait_line, CONNECTED_RE, 120)
            connect_s, fleet_rss = float(found.group(2)), rss_mib(fleet.pid)
            async with client(platform.url, token) as http:
                await devices_known(http, count, 120)
            await asyncio.sleep(args.warmup_s)
            stored, stop, stop_thread = Stored(), asyncio.Event(), threading.Event()
            if args.db == "sqlite":
                path = db_url.removeprefix("sqlite:///")
                poller = asyncio.create_task(
                    asyncio.to_thread(poll_sqlite, path, stored, stop_thread)
                )
            else:
                poller = asyncio.create_task(poll_samples(db, stored, stop))
            await asyncio.sleep(1.0)  # the poller has its starting id
            started, cpu0 = time.time(), cpu_s(platform.pid)
            delivered = await asyncio.to_thread(
                count_messages, broker.port, f"{prefix}/+/{STATUS}", args.window_s
            )
            ended, cpu1 = time.time(), cpu_s(platform.pid)
            await asyncio.sleep(3.0)  # what was sent in the window has been stored by now
            stop.set()
            stop_thread.set()
            await poller
            platform_rss = rss_mib(platform.pid)
        finally:
            fleet.stop()
            platform.child.stop()
            await db.close()
    in_window = [
        (at, seen) for (_uid, at), seen in stored.first_seen.items() if started <= seen < ended
    ]
    lags = [seen - at.timestamp() for at, seen in in_window]
    window_s = ended - started
    return IngestRow(
        count=count,
        connect_s=connect_s,
        fleet_rss_mib=fleet_rss,
        asked_per_s=count / 2,
        delivered_per_s=delivered / args.window_s,
        stored_per_s=len(in_window) / window_s,
        lag_p50_s=pct(lags, 0.5),
        lag_p99_s=pct(lags, 0.99),
        lag_max_s=max(lags, default=float("nan")),
        cpu_us_per_msg=(cpu1 - cpu0) / max(1, len(in_window)) * 1e6,
        platform_rss_mib=platform_rss,
        lag_series=[(t - started, lag) for t, lag in stored.lag_by_poll],
    )


# --- (b) round trip --------------------------------------------------------------------------


class RawPlatform:
    """The baseline: the platform's command bytes, published straight to the broker."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._waiting: dict[str, asyncio.Future[None]] = {}
        self.client = LiteClient(f"bench-raw-{uuid.uuid4().hex[:6]}", self._on_result)

    def _on_result(self, _client: LiteClient, _topic: str, payload: bytes) -> None:
        future = self._waiting.pop(json.loads(payload).get("reply", ""), None)
        if future is not None and not future.done():
            future.set_result(None)

    async def start(self, port: int) -> None:
        topic = f"{self.prefix}/+/streaming_overdemand/update/result"
        await self.client.connect("127.0.0.1", port, subscriptions=[(topic, 1)])

    async def update(self, uid: str, strategy_id: int, value: int) -> None:
        mid = str(uuid.uuid4())
        data = {"id": strategy_id, "streaming_condition": value}
        command = build_command("update", mid=mid, device_uid=uid, data=data)
        future = asyncio.get_running_loop().create_future()
        self._waiting[mid] = future
        topic = f"{self.prefix}/{uid}/streaming_overdemand/update/command"
        self.client.publish(topic, codec.encode(command), qos=1)
        await asyncio.wait_for(future, 30)


Send = Callable[[int], Awaitable[None]]


async def paced(rate_per_s: float | None, n: int, send: Send) -> list[float]:
    """Latencies (ms) of ``n`` sends: open loop at ``rate_per_s``, or one at a time if None."""

    async def timed(i: int) -> float:
        started = time.perf_counter()
        await send(i)
        return (time.perf_counter() - started) * 1000

    if rate_per_s is None:
        return [await timed(i) for i in range(n)]
    loop = asyncio.get_running_loop()
    begin, tasks = loop.time(), []
    for i in range(n):
        await asyncio.sleep(max(0.0, begin + i / rate_per_s - loop.time()))
        tasks.append(asyncio.create_task(timed(i)))
    return list(await asyncio.gather(*tasks))


@dataclass
class TripRow:
    path: str
    samples_ms: list[float] = field(default_factory=list)
    cpu_s: float = 0.0
    wall_s: float = 0.0
    failed: int = 0
    """Calls answered with another status than 200 (e.g. a 504 on a machine too loaded for the
    rate): counted, their latency kept, instead of ending the bench."""


async def create_strategies(http: httpx.AsyncClient, uids: list[str]) -> dict[str, int]:
    ids: dict[str, int] = {}
    gate = asyncio.Semaphore(10)

    async def one(number: int, uid: str) -> None:
        body = {**CREATE_DATA, "ele_meter_id": shape_for(number).meters[0].id}
        async with gate:
            response = await http.post(f"/api/devices/{uid}/strategies", json=body)
        response.raise_for_status()
        ids[uid] = response.json()["data"]["id"]

    await asyncio.gather(*(one(n, uid) for n, uid in enumerate(uids)))
    return ids


def rest_sender(
    http: httpx.AsyncClient, ids: dict[str, int], round_no: int, row: TripRow | None = None
) -> Send:
    """PATCH calls; one that fails raises, or is counted in ``row`` when given."""
    uids = list(ids)

    async def send(i: int) -> None:
        uid = uids[i % len(uids)]
        body = {"streaming_condition": (round_no * 7919 + i) % 500}
        response = await http.patch(f"/api/devices/{uid}/strategies/{ids[uid]}", json=body)
        if response.status_code != 200:
            if row is None:
                raise RuntimeError(f"PATCH {uid}: {response.status_code} {response.text}")
            row.failed += 1

    return send


def raw_sender(raw: RawPlatform, ids: dict[str, int], round_no: int) -> Send:
    uids = list(ids)

    async def send(i: int) -> None:
        uid = uids[i % len(uids)]
        await raw.update(uid, ids[uid], (round_no * 7919 + i) % 500)

    return send


async def round_trip(
    args: argparse.Namespace, broker: MosquittoProcess, folder: Path
) -> tuple[list[TripRow], float]:
    """The rows and the platform's idle CPU share (status ingest of the fleet)."""
    prefix = f"bench-{uuid.uuid4().hex[:6]}"
    count = 100
    rows = {p: TripRow(p) for p in ("raw", "rest", "raw seq", "rest seq")}
    async with database(args.db, folder, "roundtrip") as db_url:
        token = await operator_token(db_url)
        platform = start_platform(db_url, broker.url, prefix, args.timeout_s)
        fleet = start_fleet(broker.url, prefix, count)
        raw = RawPlatform(prefix)
        try:
            await asyncio.to_thread(fleet.wait_line, CONNECTED_RE, 60)
            async with client(platform.url, token) as http:
                await devices_known(http, count, 60)
                uids = [f"sim-{n:05d}" for n in range(count)]
                ids = await create_strategies(http, uids)
                await raw.start(broker.port)
                await asyncio.sleep(1.0)
                cpu0, t0 = cpu_s(platform.pid), time.monotonic()
                await asyncio.sleep(args.idle_s)
                idle_share = (cpu_s(platform.pid) - cpu0) / (time.monotonic() - t0)
                for round_no in range(args.rounds):
                    order = ("raw", "rest") if round_no % 2 == 0 else ("rest", "raw")
                    for seq in (False, True):
                        for path in order:
                            name = f"{path} seq" if seq else path
                            sender = (
                                rest_sender(http, ids, round_no, rows[name])
                                if path == "rest"
                                else raw_sender(raw, ids, round_no)
                            )
                            n = args.commands // 4 if seq else args.commands
                            cpu0, t0 = cpu_s(platform.pid), time.monotonic()
                            rate = None if seq else args.rate
                            got = await paced(rate, n, sender)
                            rows[name].samples_ms += got
                            rows[name].cpu_s += cpu_s(platform.pid) - cpu0
                            rows[name].wall_s += time.monotonic() - t0
        finally:
            raw.client.close()
            fleet.stop()
            platform.child.stop()
    return list(rows.values()), idle_share


# --- (d) one instance killed -----------------------------------------------------------------


class Reference:
    """Every status message the broker delivers: (uid, at) -> when it arrived."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.seen: dict[tuple[str, datetime], float] = {}
        self.client = LiteClient(f"bench-ref-{uuid.uuid4().hex[:6]}", self._on_status)

    def _on_status(self, _client: LiteClient, topic: str, payload: bytes) -> None:
        start = payload.find(b'"at":"') + 6
        at = datetime.fromisoformat(payload[start : payload.find(b'"', start)].decode())
        self.seen[(topic.split("/")[-4], at)] = time.time()

    async def start(self, port: int) -> None:
        topic = f"{self.prefix}/+/{STATUS}"
        await self.client.connect("127.0.0.1", port, subscriptions=[(topic, 0)])


@dataclass(frozen=True, slots=True)
class KillRow:
    devices: int
    delivered_before: int
    lost_before: int
    delivered_after: int
    lost_after: int
    commands_sent: int
    in_flight_failed: int
    refused: int
    pending: int
    resolved: dict[str, int]
    settle_s: float
    survivor_alive: bool
    survivor_log: list[str]
    catch_up_s: float


async def stored_keys(db: Database) -> set[tuple[str, datetime]]:
    t = telemetry_samples.c
    async with db.read() as conn:
        rows = (await conn.execute(sa.select(t.device_uid, t.at).distinct())).all()
    return {(r.device_uid, utc(r.at)) for r in rows}


CATCH_UP_STALL_S = 15.0


def keep_logs(**children: Child) -> None:
    """With ``GRIDGUARD_BENCH_LOGS=folder``: each child's whole output into ``folder/name.log``
    (the table keeps only the survivor's last warnings)."""
    folder = os.environ.get("GRIDGUARD_BENCH_LOGS")
    if not folder:
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    for name, child in children.items():
        (Path(folder) / f"{name}.log").write_text("\n".join(child.lines), encoding="utf-8")


async def caught_up(
    db: Database, delivered: set[tuple[str, datetime]]
) -> tuple[set[tuple[str, datetime]], float]:
    """The stored keys once every delivered one is stored, or once none has been added for
    ``CATCH_UP_STALL_S`` (what the instances still held is then counted lost); and how long
    that took. Acknowledged only once stored, a report may still be on its way into the
    database when the load ends (the survivor's backlog, a dead instance's session)."""
    started = time.monotonic()
    stored = await stored_keys(db)
    progress_at, missing = started, len(delivered - stored)
    while missing and time.monotonic() - progress_at < CATCH_UP_STALL_S:
        await asyncio.sleep(1.0)
        stored = await stored_keys(db)
        if len(delivered - stored) < missing:
            progress_at, missing = time.monotonic(), len(delivered - stored)
    return stored, time.monotonic() - started


async def settle(db: Database, timeout_s: float) -> tuple[int, dict[str, int], float]:
    """Wait until no command is pending (or ``timeout_s``): (pending, rows by state, seconds)."""
    started = time.monotonic()
    while True:
        async with db.read() as conn:
            rows = await conn.execute(
                sa.select(commands.c.state, sa.func.count()).group_by(commands.c.state)
            )
            states: dict[str, int] = {str(state): int(n) for state, n in rows.all()}
        waited_s = time.monotonic() - started
        if not states.get("pending") or waited_s > timeout_s:
            return states.get("pending", 0), states, waited_s
        await asyncio.sleep(0.5)


async def kill_one(args: argparse.Namespace, broker: MosquittoProcess, folder: Path) -> KillRow:
    prefix = f"bench-{uuid.uuid4().hex[:6]}"
    async with database("postgresql", folder, "kill") as db_url:
        token = await operator_token(db_url)
        doomed = start_platform(db_url, broker.url, prefix, args.timeout_s)
        survivor = start_platform(db_url, broker.url, prefix, args.timeout_s)
        fleet = start_fleet(broker.url, prefix, args.kill_count)
        reference = Reference(prefix)
        db = Database(db_url)
        await db.open()
        try:
            await asyncio.to_thread(fleet.wait_line, CONNECTED_RE, 120)
            async with client(doomed.url, token) as one, client(survivor.url, token) as two:
                for http in (one, two):
                    await devices_known(http, args.kill_count, 120)
                uids = [f"sim-{n:05d}" for n in range(min(100, args.kill_count))]
                ids = await create_strategies(two, uids)
                await reference.start(broker.port)
                await asyncio.sleep(args.warmup_s)
                window_start = time.time()
                sends = [rest_sender(one, ids, 0), rest_sender(two, ids, 1)]
                failed = {"in flight": 0, "refused": 0}

                async def send(i: int) -> None:
                    started = time.time()
                    try:
                        await sends[i % 2](i)
                    except (httpx.TransportError, RuntimeError):
                        failed["in flight" if started < killed_at else "refused"] += 1

                n = int(args.rate * args.kill_window_s)
                killed_at = time.time() + args.kill_window_s / 2
                killer = asyncio.get_running_loop().call_later(
                    args.kill_window_s / 2, doomed.child.popen.send_signal, signal.SIGKILL
                )
                await paced(args.rate, n, send)
                killer.cancel()
                window_end = time.time()
                pending, states, settle_s = await settle(db, args.timeout_s * 2 + 35)
                survivor_alive = survivor.child.popen.poll() is None
                survivor_log = [
                    line for line in survivor.child.lines if "WARNING" in line or "ERROR" in line
                ]
                delivered = {
                    k for k, seen in reference.seen.items() if window_start <= seen < window_end
                }
                stored, catch_up_s = await caught_up(db, delivered)
        finally:
            reference.client.close()
            fleet.stop()
            doomed.child.stop()
            survivor.child.stop()
            await db.close()
            keep_logs(doomed=doomed.child, survivor=survivor.child)
    clean = killed_at - KILL_MARGIN_S  # what the doomed instance still buffered is the kill's
    before = {k for k, seen in reference.seen.items() if window_start <= seen < clean}
    after = {k for k, seen in reference.seen.items() if clean <= seen < window_end}
    return KillRow(
        devices=args.kill_count,
        delivered_before=len(before),
        lost_before=len(before - stored),
        delivered_after=len(after),
        lost_after=len(after - stored),
        commands_sent=n,
        in_flight_failed=failed["in flight"],
        refused=failed["refused"],
        pending=pending,
        resolved=states,
        survivor_alive=survivor_alive,
        survivor_log=survivor_log[-5:],
        settle_s=settle_s,
        catch_up_s=catch_up_s,
    )


# --- report ----------------------------------------------------------------------------------


def print_ingest(rows: list[IngestRow]) -> None:
    print("\n(a) ingest, status every 2 s per device; (c) connect")
    print(
        f"{'devices':>8} {'connect':>8} {'fleet MiB':>9} {'asked/s':>8} {'broker/s':>9} "
        f"{'stored/s':>9} {'stored/broker':>13} {'lag p50':>8} {'lag p99':>8} {'lag max':>8} "
        f"{'CPU us/msg':>10} {'plat MiB':>8}"
    )
    for r in rows:
        print(
            f"{r.count:>8} {r.connect_s:>7.2f}s {r.fleet_rss_mib:>9.1f} {r.asked_per_s:>8.0f} "
            f"{r.delivered_per_s:>9.0f} {r.stored_per_s:>9.0f} "
            f"{r.stored_per_s / max(r.delivered_per_s, 1e-9):>13.2f} {r.lag_p50_s:>7.3f}s "
            f"{r.lag_p99_s:>7.3f}s {r.lag_max_s:>7.3f}s {r.cpu_us_per_msg:>10.0f} "
            f"{r.platform_rss_mib:>8.1f}"
        )


def print_trips(rows: list[TripRow], idle_share: float, rate: float) -> None:
    print(f"\n(b) update round trip over 100 devices, open loop at {rate:g}/s (seq: one at a time)")
    print(
        f"{'path':<9} {'n':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'p99/raw':>8} "
        f"{'platform CPU ms/cmd':>20} {'failed':>6}"
    )
    base = {r.path: pct(r.samples_ms, 0.99) for r in rows if r.path.startswith("raw")}
    for r in rows:
        n = len(r.samples_ms)
        cpu = (r.cpu_s - idle_share * r.wall_s) / max(1, n) * 1000
        raw_p99 = base.get(r.path.replace("rest", "raw"), float("nan"))
        print(
            f"{r.path:<9} {n:>6} {pct(r.samples_ms, 0.5):>8.2f} {pct(r.samples_ms, 0.99):>8.2f} "
            f"{max(r.samples_ms, default=float('nan')):>8.2f} "
            f"{pct(r.samples_ms, 0.99) / raw_p99:>8.1f} {cpu:>20.2f} {r.failed:>6}"
        )
    print(f"platform idle CPU (status ingest of 100 devices): {idle_share * 100:.1f}% of a core")


def print_kill(row: KillRow) -> None:
    print(f"\n(d) two instances on PostgreSQL, {row.devices} devices, one SIGKILLed halfway")
    print(
        f"status messages delivered / lost until {KILL_MARGIN_S:g} s before the kill "
        f"(baseline): {row.delivered_before} / {row.lost_before}"
    )
    print(
        f"status messages delivered / lost from then on (the kill): {row.delivered_after} / "
        f"{row.lost_after} (counted {row.catch_up_s:.1f} s after the commands settled, when "
        f"the store had all or added none for {CATCH_UP_STALL_S:g} s)"
    )
    print(
        f"commands sent {row.commands_sent}: {row.in_flight_failed} in flight in the killed "
        f"instance (HTTP call broken), {row.refused} refused by it once dead (a load balancer "
        f"would send them to the other); pending after {row.settle_s:.1f} s more: "
        f"{row.pending}; rows by state {row.resolved}"
    )
    print(f"survivor still running: {row.survivor_alive}; its last warnings: {row.survivor_log}")


def chart(rows: list[IngestRow], path: Path) -> None:
    import matplotlib as mpl  # noqa: PLC0415 - the lab extra, only for --chart

    mpl.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    figure, axes = plt.subplots(figsize=(8, 3.6))
    for r in rows:
        xs = [t for t, _ in r.lag_series]
        ys = [lag * 1000 for _, lag in r.lag_series]
        axes.plot(xs, ys, marker=".", markersize=3, linewidth=1, label=f"{r.count:,} devices")
    axes.axhline(1000, color="grey", linestyle="--", linewidth=1, label="target: p99 1 s")
    axes.set_yscale("log")
    axes.set_xlabel("s into the window")
    axes.set_ylabel("worst lag per 50 ms poll, ms")
    axes.set_title("Status ingest lag: device timestamp to stored (each poll's worst)")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    print(f"chart written to {path}")


@contextlib.contextmanager
def own_broker() -> Iterator[MosquittoProcess]:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    broker = MosquittoProcess(general="max_queued_messages 0\n")
    broker.start()
    try:
        yield broker
    finally:
        broker.remove()


async def main() -> None:
    parser = argparse.ArgumentParser(prog="bench/platform.py", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 devices, short windows")
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--sections", nargs="+", choices=list("abcd"), default=list("abcd"))
    parser.add_argument("--counts", type=int, nargs="+", default=None)
    parser.add_argument("--rate", type=float, default=100.0, help="commands per second in (b)")
    parser.add_argument("--chart", type=Path, default=None, help="PNG of the ingest lag")
    args = parser.parse_args()
    args.counts = args.counts or ([1000] if args.quick else [1000, 10000])
    args.window_s, args.warmup_s = (8.0, 3.0) if args.quick else (20.0, 5.0)
    args.commands, args.rounds = (300, 2) if args.quick else (1000, 4)
    args.idle_s = 3.0
    args.timeout_s = 3.0
    args.kill_count, args.kill_window_s = (500, 10.0) if args.quick else (1000, 20.0)
    ingest_rows: list[IngestRow] = []
    with own_broker() as broker, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if {"a", "c"} & set(args.sections):
            for count in sorted(args.counts):
                ingest_rows.append(await ingest(args, broker, folder, count))
                print_ingest(ingest_rows[-1:])
        trips = await round_trip(args, broker, folder) if "b" in args.sections else None
        kill = await kill_one(args, broker, folder) if "d" in args.sections else None
    load = os.getloadavg()[0]
    print(f"\nplatform on {args.db}; load average {load:.1f} on {os.cpu_count()} cores")
    if ingest_rows:
        print_ingest(ingest_rows)
    if trips:
        print_trips(*trips, args.rate)
    if kill:
        print_kill(kill)
    if args.chart and ingest_rows:
        chart(ingest_rows, args.chart)


if __name__ == "__main__":
    asyncio.run(main())
