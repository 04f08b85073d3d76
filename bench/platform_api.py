"""What the platform adds to a command round trip: REST -> MQTT -> agent -> MQTT -> HTTP answer.

    .venv/bin/python bench/platform_api.py [--n 300] [--rounds 4] [--db sqlite|postgresql]

Starts its own Mosquitto (``set_tcp_nodelay true``) on a free 127.0.0.1 port; one process
runs an edge agent (protocol only, durable SQLite), the platform (on SQLite or a scratch
PostgreSQL database) and the measuring clients. Rounds alternate between the two paths, each
sending ``--n`` sequential update commands to the same strategy:

* **sdk**: ``StrategyClient`` straight to the agent (the baseline: broker + agent);
* **platform**: ``PATCH /api/devices/{uid}/strategies/{id}`` over HTTP (adds the audit row
  written before sending, the result recorded and the desired set advanced after).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx

from gridguard.client import StrategyClient
from gridguard.edge.run import run_agent
from gridguard.platform.run import Running, run_platform
from gridguard.platform.security import Role
from gridguard.platform.settings import Settings
from gridguard.platform.users import create_token, create_user
from gridguard.protocol.topics import TopicScheme
from gridguard.site.config import SiteConfig, load_site_config
from gridguard.store.scratch import create_scratch_database, drop_scratch_database
from gridguard.testing.examples import CREATE_DATA
from gridguard.testing.mosquitto import MosquittoProcess

EXAMPLE = Path(__file__).parents[1] / "examples" / "edge.toml"


def site(broker: str, prefix: str, folder: Path) -> SiteConfig:
    base = load_site_config(EXAMPLE).model_dump()
    base["device"]["uid"] = f"gg-bench-{uuid.uuid4().hex[:8]}"
    base["mqtt"] = {"url": broker, "scheme": "custom", "prefix": prefix, "status_enabled": False}
    base["store"] = {"url": f"sqlite:///{folder / 'edge.db'}"}
    return SiteConfig.model_validate(base)


def row(name: str, samples_ms: list[float]) -> str:
    ordered = sorted(samples_ms)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (
        f"{name:<10} {len(ordered):>6} {statistics.median(ordered):>9.2f} {p99:>9.2f} "
        f"{statistics.fmean(ordered):>9.2f}"
    )


async def measure(args: argparse.Namespace, folder: Path, db_url: str, broker: str) -> None:
    prefix = f"ggbench-{uuid.uuid4().hex[:8]}/ems"
    edge = site(broker, prefix, folder)
    stop = asyncio.Event()
    agent = asyncio.create_task(run_agent(edge, stop, control=False))
    running = Running()
    settings = Settings(db_url=db_url, mqtt_url=broker, port=0, prefixes=(prefix,))
    platform = asyncio.create_task(run_platform(settings, stop, running=running))
    await asyncio.wait_for(running.ready.wait(), 30)
    assert running.services is not None
    now = datetime.now(UTC)
    user = await create_user(
        running.services.db, name="bench", password="bench-password", role=Role.OPERATOR, now=now
    )
    token = (await create_token(running.services.db, user_id=user.id, name="b", now=now)).token
    uid = edge.device.uid
    sdk = StrategyClient(broker, TopicScheme("custom", prefix=prefix), uid)
    headers = {"Authorization": f"Bearer {token}"}
    async with sdk as ems, httpx.AsyncClient(base_url=running.url, headers=headers) as http:
        strategy_id = (await ems.create(CREATE_DATA)).data.id  # type: ignore[union-attr]
        while (await http.get(f"/api/devices/{uid}")).status_code != 200:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        times: dict[str, list[float]] = {"sdk": [], "platform": []}
        for round_no in range(args.rounds):
            for path in ("sdk", "platform") if round_no % 2 == 0 else ("platform", "sdk"):
                for i in range(args.n):
                    body = {"streaming_condition": (round_no * args.n + i) % 500}
                    started = time.perf_counter()
                    if path == "sdk":
                        result = await ems.update({"id": strategy_id, **body})
                        assert result.code == 200, result.msg
                    else:
                        response = await http.patch(
                            f"/api/devices/{uid}/strategies/{strategy_id}", json=body
                        )
                        assert response.status_code == 200, response.text
                    times[path].append((time.perf_counter() - started) * 1000)
    stop.set()
    await asyncio.gather(agent, platform)
    print(f"update round trip, ms ({args.rounds} alternating rounds, platform on {args.db})")
    print(f"{'path':<10} {'n':>6} {'p50':>9} {'p99':>9} {'mean':>9}")
    for name, samples in times.items():
        print(row(name, samples))
    extra = statistics.median(times["platform"]) - statistics.median(times["sdk"])
    print(f"platform adds {extra:.2f} ms at the median")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    broker = MosquittoProcess()
    broker.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            if args.db == "sqlite":
                await measure(args, folder, f"sqlite:///{folder / 'platform.db'}", broker.url)
                return
            url = await create_scratch_database(prefix="ggplatbench")
            try:
                await measure(args, folder, url, broker.url)
            finally:
                await drop_scratch_database(url)
    finally:
        broker.remove()


if __name__ == "__main__":
    asyncio.run(main())
