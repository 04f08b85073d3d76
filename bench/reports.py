"""What list/post and sync cost as a site grows: N strategies, one per meter, a PCS behind each.

    .venv/bin/python bench/reports.py [--strategies 1000] [--repeat 20]

The command service on the in-memory store (the durable commit is bench/store.py's), with a
live view whose values can be changed (a meter's demand, every device going online). Printed,
per case, the median and the worst of ``--repeat`` runs, in ms of one core:

* list/post as the periodic reporter builds it: nothing changed since the last one; after one
  strategy changed; after one meter's demand changed; after every device's online state flipped
  (the first control cycle after start, or a whole bus going down), built at once and as the
  agent's reporter builds it (in slices, the loop free between: the row gives one slice);
* a sync command (new mid) and a repeated sync mid (its reply rebuilt from the marker);
* the bytes the reply table keeps for one sync.

Each case's baseline is an update command, measured in the same run: the time a command costs
when no report is built.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping

from gridguard.edge.agent import WARM_SLICE
from gridguard.edge.service import CommandService
from gridguard.protocol.codec import json_bytes
from gridguard.site.config import parse_site_config
from gridguard.store.memory import MemoryStrategyStore
from gridguard.testing.examples import CREATE_DATA
from gridguard.testing.sites import many_meters_site

UID = "gg-bench-001"


class Live:
    """A live view the bench changes: demand per meter, online per device."""

    def __init__(self) -> None:
        self.demand: dict[int, int] = {}
        self.up = True
        self.changes = object()

    def dynamic_demand_kw(self) -> Mapping[int, int]:
        return self.demand

    def online(self, kind: str, device_id: int) -> bool:  # noqa: ARG002
        return self.up

    def revision(self) -> object:
        return self.changes


def command(op: str, data: object, mid: str | None = None) -> bytes:
    message: dict[str, object] = {
        "mid": mid or str(uuid.uuid4()),
        "type": f"streaming_overdemand_{op}",
        "device_uid": UID,
        "timestamp": int(time.time() * 1000),
    }
    if data is not None:
        message["data"] = data
    return json_bytes(message)


def agent_slices_ms(svc: CommandService) -> list[float]:
    """What the agent's reporter holds the loop for, slice by slice: the stale objects are
    encoded WARM_SLICE at a time (the loop is free between), then the list is joined."""
    out = []
    started = time.perf_counter()
    stale = svc.stale_report()
    for start in range(0, len(stale), WARM_SLICE):
        svc.warm_report(stale[start : start + WARM_SLICE])
        out.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
    svc.list_post()
    out.append((time.perf_counter() - started) * 1000)
    return out


def timed_ms(step: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        step()
        out.append((time.perf_counter() - started) * 1000)
    return out


async def atimed_ms(step: Callable[[], Awaitable[object]], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        await step()
        out.append((time.perf_counter() - started) * 1000)
    return out


async def run(n: int, repeat: int) -> list[tuple[str, list[float]]]:
    site = parse_site_config(many_meters_site(n, uid=UID))
    store = MemoryStrategyStore()
    await store.open()
    live = Live()
    svc = CommandService(site=site, store=store, live=live)
    await svc.load()
    items = [{**CREATE_DATA, "ele_meter_id": m.id} for m in site.meters]
    created = await svc.handle("update_all", command("update_all", items))
    assert created.code == 200, created.reply[:300]
    rows: list[tuple[str, list[float]]] = []
    svc.list_post()
    counter = iter(range(10**9))

    async def update() -> None:
        data = {"id": 1, "streaming_condition": next(counter) % 1000}
        handled = await svc.handle("update", command("update", data))
        assert handled.code == 200

    rows.append(("update command (baseline, no report)", await atimed_ms(update, repeat)))
    rows.append(("list/post, nothing changed", timed_ms(svc.list_post, repeat)))

    async def changed_then_list() -> None:
        await update()
        svc.list_post()

    rows.append(
        ("update + list/post (one strategy changed)", await atimed_ms(changed_then_list, repeat))
    )

    def demand_then_list() -> None:
        live.demand[1] = next(counter) % 1000
        live.changes = object()
        svc.list_post()

    rows.append(("list/post, one meter's demand changed", timed_ms(demand_then_list, repeat)))

    def flip_then_list() -> None:
        live.up = not live.up
        live.changes = object()
        svc.list_post()

    rows.append(("list/post, every device's online flipped", timed_ms(flip_then_list, repeat)))
    slices: list[float] = []
    for _ in range(repeat):
        live.up = not live.up
        live.changes = object()
        slices.extend(agent_slices_ms(svc))
    rows.append(("the same, one slice of the agent's reporter", slices))

    async def sync() -> None:
        handled = await svc.handle("sync", command("sync", None))
        assert handled.code == 200

    rows.append(("sync command (new mid)", await atimed_ms(sync, repeat)))
    mid = str(uuid.uuid4())
    await svc.handle("sync", command("sync", None, mid))

    async def resync() -> None:
        handled = await svc.handle("sync", command("sync", None, mid))
        assert handled.code == 200
        assert handled.duplicate

    rows.append(("sync command (repeated mid)", await atimed_ms(resync, repeat)))
    stored = await store.get_replies([f"sync/{mid}"])
    rows.append(("bytes stored for one sync (not ms)", [float(len(stored[f"sync/{mid}"].payload))]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategies", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    rows = asyncio.run(run(args.strategies, args.repeat))
    print(f"\n{args.strategies} strategies, one per meter, one PCS behind each; {args.repeat} runs")
    print(f"| {'case':<44} | median ms | worst ms |")
    print(f"|{'-' * 46}|-----------|----------|")
    for name, values in rows:
        print(f"| {name:<44} | {statistics.median(values):>9.2f} | {max(values):>8.2f} |")


if __name__ == "__main__":
    main()
