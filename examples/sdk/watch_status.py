"""Print what an EMS reports: each list/post (its strategies) as it arrives (the GridGuard SDK).

    python examples/sdk/watch_status.py --port 1883 --device-uid gg-demo-001 --count 1

Stops after ``--count`` reports (0: until Ctrl-C).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys

from gridguard.client import StrategyClient
from gridguard.protocol.topics import TopicScheme


async def main(host: str, port: int, prefix: str, device_uid: str, count: int) -> int:
    scheme = TopicScheme("custom", prefix=prefix)
    seen = 0
    async with StrategyClient(f"mqtt://{host}:{port}", scheme, device_uid) as ems:
        async for report in ems.lists():  # the retained report first, then every new one
            ids = [s.id for s in report.data]
            print(f"list/post: {len(ids)} strategies {ids}")
            seen += 1
            if seen == count:
                break
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--prefix", default="v1/gridguard", help="the site's custom topic prefix")
    parser.add_argument("--device-uid", default="gg-demo-001")
    parser.add_argument("--count", type=int, default=0, help="reports to print; 0: no end")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(asyncio.run(main(args.host, args.port, args.prefix, args.device_uid, args.count)))
