"""Create an anti-backflow strategy on an EMS, then list what it stores (the GridGuard SDK).

    python examples/sdk/create_and_sync.py --port 1883 --device-uid gg-demo-001

Against `gridguard demo`, pass the port it printed. Exit status 0 when the create got 200.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from gridguard.client import CommandTimeoutError, StrategyClient
from gridguard.protocol.topics import TopicScheme

CREATE = {
    "ele_meter_id": 9,  # the gateway meter the strategy protects
    "streaming_status": 1,  # anti-backflow on: keep importing at least ...
    "streaming_condition": 10,  # ... 10 kW
    "individual_phase_streaming_status": 2,
    "over_demand_status": 2,
    "over_demand_condition": [500] * 12,  # kW per month, January first
    "dynamic_demand_percentage": 90,
}


async def main(host: str, port: int, prefix: str, device_uid: str, timeout_s: float) -> int:
    scheme = TopicScheme("custom", prefix=prefix)
    async with StrategyClient(
        f"mqtt://{host}:{port}", scheme, device_uid, timeout_s=timeout_s
    ) as ems:
        try:
            created = await ems.create(CREATE)
            print(f"create: code {created.code} {created.msg or created.data}")
            for strategy in (await ems.sync()).data:
                print(f"stored: id {strategy.id} on meter {strategy.ele_meter_id}")
        except CommandTimeoutError as exc:
            print(
                f"{exc}: no EMS answered on {host}:{port}. Is the agent running and connected "
                f"to this broker, with device uid {device_uid!r} and prefix {prefix!r}? "
                "(gridguard demo prints its port; an agent logs 'connected' at start)",
                file=sys.stderr,
            )
            return 1
    return 0 if created.code == 200 else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--prefix", default="v1/gridguard", help="the site's custom topic prefix")
    parser.add_argument("--device-uid", default="gg-demo-001")
    parser.add_argument("--timeout-s", type=float, default=10.0, help="wait this long for a result")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.host, args.port, args.prefix, args.device_uid, args.timeout_s)))
