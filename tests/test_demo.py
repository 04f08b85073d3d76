"""`gridguard demo` as a new user runs it: one command, a create, the site held at the baseline."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from gridguard.client import StrategyClient
from gridguard.demo.run import create_payload, instructions, packaged_site, with_ports
from gridguard.ports import port_open
from gridguard.protocol.topics import TopicScheme
from gridguard.sim.servers import SECTIONS

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parents[1]

BASELINE_KW = 10


def start_demo(folder: Path) -> tuple[subprocess.Popen[str], int]:
    """The demo started in an empty folder (its site ships in the package)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "gridguard", "demo"],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 30
    port = None
    for line in process.stdout:
        found = re.search(r"mqtt://127\.0\.0\.1:(\d+)", line)
        port = port or (int(found.group(1)) if found else None)
        if line.startswith("Ctrl-C stops everything") or time.monotonic() > deadline:
            break
    assert port is not None, "the demo did not print its broker"
    return process, port


async def wait_held_at_baseline(port: int, timeout_s: float) -> dict[str, object]:
    """The status topic shows meter 9 importing at least the baseline (D15)."""
    topic = "v1/gridguard/gg-demo-001/streaming_overdemand/status/post"
    async with aiomqtt.Client("127.0.0.1", port, identifier="test-demo-status") as client:
        await client.subscribe(topic)
        deadline = time.monotonic() + timeout_s
        last: dict[str, object] = {}
        async for message in client.messages:
            if message.topic.value != topic:  # amqtt also replays non-matching retained ones
                continue
            assert isinstance(message.payload, bytes)
            status = json.loads(message.payload)
            meter: dict[str, Any] = next(m for m in status["meters"] if m["meter_id"] == 9)
            last = meter
            if meter["floor_kw"] is not None and meter["grid_power_kw"] >= BASELINE_KW:
                return meter
            if time.monotonic() > deadline:
                break
    raise AssertionError(f"site not held at the baseline; last status {last}")


async def test_demo_end_to_end(tmp_path: Path) -> None:
    """Demo up; a create gets 200; status shows the export turned into >= baseline import;
    Ctrl-C stops everything cleanly and the store is under ./gridguard-data/."""
    process, port = start_demo(tmp_path)
    try:
        scheme = TopicScheme("custom", prefix="v1/gridguard")
        async with StrategyClient(f"mqtt://127.0.0.1:{port}", scheme, "gg-demo-001") as ems:
            result = await ems.create(
                {
                    "ele_meter_id": 9,
                    "streaming_status": 1,
                    "streaming_condition": BASELINE_KW,
                    "individual_phase_streaming_status": 2,
                    "over_demand_status": 2,
                    "over_demand_condition": [500] * 12,
                    "dynamic_demand_percentage": 90,
                }
            )
            assert (result.code, result.msg) == (200, "")
        meter = await wait_held_at_baseline(port, timeout_s=20)
        assert float(str(meter["grid_power_kw"])) >= BASELINE_KW
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = await asyncio.to_thread(process.communicate, timeout=20)
    assert process.returncode == 0, output
    assert "demo stopped" in output
    assert (tmp_path / "gridguard-data" / "edge.db").exists()


def test_with_ports_gives_every_endpoint_its_own() -> None:
    """No base: every TCP port 0 (the simulator binds a free one each); a base numbers the
    file's distinct endpoints from base + 1, in file order."""
    site = packaged_site()
    free = with_ports(site, None)
    assert {d.modbus.port for s in SECTIONS for d in getattr(free, s)} == {0}
    based = with_ports(site, 30000)
    ports = [d.modbus.port for s in SECTIONS for d in getattr(based, s)]
    assert ports == list(range(30001, 30008))


def test_readme_shows_the_demo_create_and_ports() -> None:
    """The README's create payloads are the demo's, and every mosquitto command names its
    port (-p): pasted against a broker on another port, nothing silently goes astray."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    payloads = re.findall(r"mosquitto_pub .*? -m '(\{.*?\})'", readme, flags=re.DOTALL)
    assert len(payloads) >= 2
    expected = json.loads(create_payload("gg-demo-001", 9))
    assert all(json.loads(p) == expected for p in payloads)
    commands = re.findall(r"^mosquitto_(?:sub|pub) .*$", readme, flags=re.MULTILINE)
    assert commands
    assert all(" -p " in c for c in commands)
    printed = instructions(packaged_site(), 41883)
    for line in (p.strip() for p in printed if p.strip().startswith("mosquitto_")):
        assert line in readme


def test_port_base_taken_is_one_line(tmp_path: Path) -> None:
    """A --port-base whose broker or endpoint port is in use: exit 2, one line naming it."""
    from typer.testing import CliRunner  # noqa: PLC0415

    from gridguard.cli import app  # noqa: PLC0415

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        if port_open(port - 1):
            pytest.skip(f"port {port - 1} is in use by something else")
        data = str(tmp_path / "data")
        for base, expected in ((port, f"port {port} is taken"), (port - 1, f":{port}: cannot")):
            result = CliRunner().invoke(app, ["demo", "--port-base", str(base), "--data-dir", data])
            assert result.exit_code == 2, result.output
            assert expected in result.output
            assert "Traceback" not in result.output
