"""Store commits per second: one create command = one strategy upsert + one reply per commit.

    .venv/bin/python bench/store.py [--commits 3000] [--pg-url postgresql://postgres@127.0.0.1/test]

Rows: the stdlib sqlite3 floor (one INSERT per transaction, WAL + synchronous=FULL, i.e. one
fsync per commit); the store's own SQL for a create run through stdlib sqlite3 (disk + SQLite
cost of our schema); the SQL store on SQLite (also with pruning active on every commit); the SQL
store on PostgreSQL (a scratch database, dropped afterwards); and group commit (commit_batch,
one transaction and one fsync for BATCH commands) on both. The agent's
target is >= 2,000 create/update commands per second with durable SQLite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from gridguard.store import StoredReply, StoredStrategy, StrategyStore
from gridguard.store.base import CommitEntry
from gridguard.store.scratch import (
    DEFAULT_ADMIN_URL,
    create_scratch_database,
    drop_scratch_database,
)
from gridguard.store.sql import SqlStrategyStore

DOCUMENT = {
    "streaming_status": 1,
    "streaming_condition": 0,
    "individual_phase_streaming_status": 2,
    "over_demand_status": 1,
    "over_demand_condition": [800] * 12,
    "dynamic_demand_status": 2,
    "dynamic_demand_percentage": 90,
    "updated_by": "bench",
}
BATCH = 32
"""Commands per group commit in the batch rows."""
PAYLOAD = b'{"mid":"00000000-0000-4000-8000-000000000000","code":200,"msg":"","data":{"id":1}}'


@dataclass(frozen=True)
class Result:
    name: str
    commits: int
    elapsed_s: float
    latencies_s: list[float]

    def row(self) -> str:
        ordered = sorted(self.latencies_s)
        p50_ms = ordered[len(ordered) // 2] * 1e3
        p99_ms = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e3
        rate = self.commits / self.elapsed_s
        return f"| {self.name:<44} | {rate:>10,.0f} | {p50_ms:>8.3f} | {p99_ms:>8.3f} |"


def bench_raw_sqlite(path: Path, commits: int) -> Result:
    """The floor: stdlib sqlite3, WAL + synchronous=FULL, one INSERT per transaction."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, mid TEXT UNIQUE, payload BLOB)")
    latencies: list[float] = []
    start = time.perf_counter()
    for n in range(commits):
        t0 = time.perf_counter()
        conn.execute("BEGIN")
        conn.execute("INSERT INTO t (mid, payload) VALUES (?, ?)", (f"m-{n}", PAYLOAD))
        conn.execute("COMMIT")
        latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - start
    conn.close()
    return Result("sqlite3 stdlib, 1 INSERT/txn (floor)", commits, elapsed, latencies)


RAW_CREATE = (
    (
        "UPDATE store_counters SET reply_seq = reply_seq + 1,"
        " next_id = CASE WHEN next_id < ? THEN ? ELSE next_id END WHERE id = 1 RETURNING reply_seq"
    ),
    "DELETE FROM strategies WHERE id IN (?)",
    "INSERT INTO strategies (id, ele_meter_id, device_type, document) VALUES (?, ?, ?, ?)",
    "INSERT INTO replies (seq, mid, op, payload) VALUES (?, ?, ?, ?)",
)


def bench_raw_create(path: Path, commits: int) -> Result:
    """The store's own statements and schema, straight through stdlib sqlite3: what the disk
    and SQLite cost, without SQLAlchemy and the thread hop."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=FULL")
    bump, delete, insert_strategy, insert_reply = RAW_CREATE
    document = json.dumps(DOCUMENT)
    latencies: list[float] = []
    start = time.perf_counter()
    for n in range(1, commits + 1):
        t0 = time.perf_counter()
        conn.execute("BEGIN")
        (seq,) = conn.execute(bump, (n + 1, n + 1)).fetchone()
        conn.execute(delete, (n,))
        conn.execute(insert_strategy, (n, n, 2, document))
        conn.execute(insert_reply, (seq, f"mid-{n}", "create", PAYLOAD))
        conn.execute("COMMIT")
        latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - start
    conn.close()
    return Result("sqlite3 stdlib, a create's 4 statements", commits, elapsed, latencies)


def create(n: int) -> CommitEntry:
    """Create command n: strategy n on meter n, its reply, the counter raised past it."""
    reply = StoredReply(f"mid-{n}", "create", PAYLOAD)
    return CommitEntry(reply, upserts=[StoredStrategy(n, n, 2, DOCUMENT)], next_id=n + 1)


async def bench_store(name: str, store: StrategyStore, commits: int, batch: int = 1) -> Result:
    """Create commands back to back, each transaction awaited before the next (D5: in order);
    ``batch`` > 1 group-commits that many commands per transaction (commit_batch)."""
    await store.open()
    try:
        latencies: list[float] = []
        start = time.perf_counter()
        for first in range(1, commits + 1, batch):
            entries = [create(n) for n in range(first, min(first + batch, commits + 1))]
            t0 = time.perf_counter()
            if batch == 1:
                (entry,) = entries
                await store.commit(reply=entry.reply, upserts=entry.upserts, next_id=entry.next_id)
            else:
                await store.commit_batch(entries)
            latencies.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - start
    finally:
        await store.close()
    return Result(name, commits, elapsed, latencies)


async def bench_postgres(admin_url: str, name: str, commits: int, batch: int) -> Result | str:
    """One row on its own scratch database (dropped afterwards)."""
    try:
        url = await create_scratch_database(admin_url, prefix="gridguard_bench")
    except OSError as exc:
        return f"PostgreSQL at {admin_url} skipped: {exc}"
    try:
        return await bench_store(name, SqlStrategyStore(url), commits, batch)
    finally:
        await drop_scratch_database(url, admin_url=admin_url)


async def run(commits: int, admin_url: str | None) -> list[Result | str]:
    results: list[Result | str] = []
    with tempfile.TemporaryDirectory(prefix="gridguard-bench-") as tmp:
        folder = Path(tmp)
        results.append(bench_raw_sqlite(folder / "raw.db", commits))
        async with SqlStrategyStore(str(folder / "schema.db")):
            pass  # the store's schema, migrated
        results.append(bench_raw_create(folder / "schema.db", commits))
        runs: list[tuple[str, Callable[[], Awaitable[Result]]]] = [
            ("sqlite", lambda: bench_store(
                "SqlStrategyStore, SQLite FULL", SqlStrategyStore(str(folder / "a.db")), commits)),
            ("sqlite-prune", lambda: bench_store(
                "  pruning every commit (keep 100)",
                SqlStrategyStore(str(folder / "b.db"), keep_replies=100), commits)),
            ("sqlite-batch", lambda: bench_store(
                f"  commit_batch of {BATCH}, SQLite FULL",
                SqlStrategyStore(str(folder / "c.db")), commits, BATCH)),
        ]  # fmt: skip
        for _, make in runs:
            results.append(await make())
    if admin_url is not None:
        for name, batch in (
            ("SqlStrategyStore, PostgreSQL", 1),
            (f"  commit_batch of {BATCH}, PostgreSQL", BATCH),
        ):
            results.append(await bench_postgres(admin_url, name, commits, batch))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=3000, help="commits per row")
    parser.add_argument("--pg-url", default=DEFAULT_ADMIN_URL, help="PostgreSQL admin URL")
    parser.add_argument("--no-pg", action="store_true", help="skip PostgreSQL")
    args = parser.parse_args()
    results = asyncio.run(run(args.commits, None if args.no_pg else args.pg_url))
    print(f"{args.commits} create commands per row (1 strategy upsert + 1 reply each)")
    print("latency = one transaction (one command, or one batch in the commit_batch rows)")
    print(f"| {'backend':<44} | {'commands/s':>10} | {'p50 ms':>8} | {'p99 ms':>8} |")
    print(f"|{'-' * 46}|{'-' * 12}|{'-' * 10}|{'-' * 10}|")
    for result in results:
        print(result.row() if isinstance(result, Result) else f"  {result}")


if __name__ == "__main__":
    main()
