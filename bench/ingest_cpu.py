"""CPU per status/post message in the platform's ingest path, by stage, without a broker.

    .venv/bin/python bench/ingest_cpu.py [--devices 10000] [--rounds 4] [--batch 1000]

``--devices`` simulated EMS (the fleet simulator's own status payloads) each report
``--rounds`` times through ``Ingest.handle`` into a ``TelemetryWriter`` on a SQLite file,
flushed every ``--batch`` messages (1,000 = one 200 ms flush at 5,000 messages/s). CPU is
process time (the flush runs in a worker thread), per message, by stage. Baseline, in the same
run: the floor of storing a status, the standard library's ``sqlite3`` inserting one row per
meter by ``executemany`` into a bare table and committing, with the payload parsed by orjson.

Where the lag at 10,000 devices comes from: the writer flushes at most every 200 ms, and one
flush of a batch takes ``batch x flush CPU`` (more in wall time, sharing the GIL with the
receiving loop); the ``writer busy`` column is that share of the 200 ms at 5,000 messages/s.
Near 1 the batches (and the lag) grow without bound.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

import gridguard.platform.telemetry_store as store
from gridguard.clock import SystemClock
from gridguard.platform.alarm_service import AlarmService
from gridguard.platform.database import Database
from gridguard.platform.ingest import Ingest
from gridguard.sim.fleet_device import SimDevice
from gridguard.sim.fleet_site import shape_for

STAGES = ("devices", "samples", "minutes", "peaks")


class _NoCommander:
    async def on_result(self, **_kw: Any) -> None:
        return None


@contextlib.contextmanager
def timed_stages(spent: dict[str, float]) -> Iterator[None]:
    """Thread CPU of the flush's stages, added to ``spent`` (by patching the writer's parts)."""

    def wrap(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name] += time.thread_time() - started

        return timed

    calls = {"n": 0}

    def by_call(fn: Callable[..., Any]) -> Callable[..., Any]:
        samples, minutes = wrap("samples", fn), wrap("minutes", fn)

        def either(*args: Any, **kwargs: Any) -> Any:
            calls["n"] += 1  # in _write_samples: the samples first, then the minute upsert
            return (samples if calls["n"] % 2 else minutes)(*args, **kwargs)

        return either

    parts: list[tuple[Any, str, Callable[[Callable[..., Any]], Callable[..., Any]]]] = [
        (store, "record_seen_many", lambda fn: wrap("devices", fn)),
        (store, "execute_many", by_call),
        (store.TelemetryWriter, "_update_peaks", lambda fn: wrap("peaks", fn)),
    ]
    saved = [getattr(owner, name) for owner, name, _ in parts]
    for (owner, name, make), original in zip(parts, saved, strict=True):
        setattr(owner, name, make(original))
    try:
        yield
    finally:
        for (owner, name, _), original in zip(parts, saved, strict=True):
            setattr(owner, name, original)


def payloads(devices: list[SimDevice], round_no: int, start_ns: int) -> list[tuple[str, bytes]]:
    now_ns = start_ns + round_no * 2_000_000_000
    return [
        (f"bench/{d.uid}/streaming_overdemand/status/post", d.status_post(now_ns + i * 1000, 2.0))
        for i, d in enumerate(devices)
    ]


async def platform_path(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    db = Database(f"sqlite:///{folder / 'platform.db'}")
    await db.open()
    clock = SystemClock()
    writer = store.TelemetryWriter(db, clock)
    writer.after_flush.append(AlarmService(db, clock).on_samples)
    ingest = Ingest(commander=_NoCommander(), writer=writer, clock=clock)  # type: ignore[arg-type]
    devices = [SimDevice(f"sim-{n:05d}", shape_for(n)) for n in range(args.devices)]
    start_ns = time.time_ns()
    spent: dict[str, float] = collections.defaultdict(float)
    walls: list[float] = []
    messages = 0
    try:
        for round_no in range(args.rounds + 1):  # round 0 registers every device: not counted
            batch = payloads(devices, round_no, start_ns)
            for first in range(0, len(batch), args.batch):
                c0 = time.process_time()
                for topic, payload in batch[first : first + args.batch]:
                    await ingest.handle(topic, payload)
                c1, w1 = time.process_time(), time.perf_counter()
                with timed_stages(spent) if round_no else contextlib.nullcontext():
                    await writer.flush()
                if round_no:
                    spent["handle"] += c1 - c0
                    spent["flush"] += time.process_time() - c1
                    walls.append(time.perf_counter() - w1)
                    messages += len(batch[first : first + args.batch])
    finally:
        await db.close()
    return {"messages": messages, "walls": walls, **spent}


def floor_path(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """The baseline: parse, one row per meter, executemany, commit; nothing else."""
    devices = [SimDevice(f"sim-{n:05d}", shape_for(n)) for n in range(args.devices)]
    conn = sqlite3.connect(folder / "floor.db")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE s (id INTEGER PRIMARY KEY, uid TEXT, meter INT, at TEXT, kw REAL)")
    start_ns, spent, messages = time.time_ns(), 0.0, 0
    for round_no in range(1, args.rounds + 1):
        batch = payloads(devices, round_no, start_ns)
        for first in range(0, len(batch), args.batch):
            c0 = time.process_time()
            rows = []
            for topic, payload in batch[first : first + args.batch]:
                doc = orjson.loads(payload)
                uid = topic.split("/")[1]
                rows += [(uid, m["meter_id"], doc["at"], m["grid_power_kw"]) for m in doc["meters"]]
            conn.executemany("INSERT INTO s (uid, meter, at, kw) VALUES (?, ?, ?, ?)", rows)
            conn.commit()
            spent += time.process_time() - c0
            messages += len(batch[first : first + args.batch])
    conn.close()
    return {"messages": messages, "total": spent}


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="bench/ingest_cpu.py", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--batch", type=int, default=1000, help="messages per flush")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        floor = floor_path(args, folder)
        got = asyncio.run(platform_path(args, folder))
    n = got["messages"]
    per = {k: got[k] / n * 1e6 for k in ("handle", "flush", *STAGES)}
    total = per["handle"] + per["flush"]
    floor_us = floor["total"] / floor["messages"] * 1e6
    walls = sorted(got["walls"])
    sample = payloads([SimDevice(f"sim-{i:05d}", shape_for(i)) for i in range(100)], 0, 0)
    meters = sum(len(orjson.loads(p)["meters"]) for _t, p in sample) / len(sample)
    print(
        f"\nstatus/post ingest CPU, {args.devices} devices x {args.rounds} reports, "
        f"{args.batch} per flush, SQLite ({meters:.1f} meters per report)"
    )
    print(f"{'path':<34} {'us/msg':>8} {'x floor':>8}")
    print(f"{'floor: parse + insert + commit':<34} {floor_us:>8.1f} {1.0:>8.2f}")
    print(f"{'platform: handle (parse, batch)':<34} {per['handle']:>8.1f}")
    print(f"{'platform: flush':<34} {per['flush']:>8.1f}")
    for stage in STAGES:
        print(f"{'  of which ' + stage:<34} {per[stage]:>8.1f}")
    other = per["flush"] - sum(per[stage] for stage in STAGES)
    print(f"{'  of which the rest (commit, ...)':<34} {other:>8.1f}")
    print(f"{'platform: total':<34} {total:>8.1f} {total / floor_us:>8.2f}")
    p50, p99 = walls[len(walls) // 2], walls[min(len(walls) - 1, int(len(walls) * 0.99))]
    busy = 5000 * per["flush"] / 1e6
    print(
        f"flush wall per {args.batch}: p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms; "
        f"writer busy at 5,000/s: {busy:.2f} of its time (CPU)"
    )


if __name__ == "__main__":
    main()
