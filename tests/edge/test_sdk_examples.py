"""The SDK examples under examples/sdk/ run as a user runs them, against a real agent."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from gridguard.testing.mosquitto import port_open
from tests.edge.conftest import AgentFactory, make_site, missing_service

EXAMPLES = Path(__file__).parents[2] / "examples" / "sdk"
MOSQUITTO = "mqtt://127.0.0.1:1883"

pytestmark = [pytest.mark.mosquitto, pytest.mark.integration]


async def run_example(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, str(EXAMPLES / name), "--port", "1883", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_create_and_sync_then_watch(agent_factory: AgentFactory, tmp_path: Path) -> None:
    """create_and_sync.py gets a 200 and lists the new strategy; watch_status.py prints the
    retained list/post with it."""
    if not port_open(1883):
        missing_service("no Mosquitto on 127.0.0.1:1883")
    site = make_site(MOSQUITTO, db_path=tmp_path / "edge.db")
    await agent_factory(site)
    target = ["--prefix", "acme/ems/v1", "--device-uid", site.device.uid]
    created = await run_example("create_and_sync.py", *target)
    assert created.returncode == 0, created.stderr
    assert "create: code 200 id=1" in created.stdout
    assert "stored: id 1 on meter 9" in created.stdout
    watched = await run_example("watch_status.py", *target, "--count", "1")
    assert watched.returncode == 0, watched.stderr
    assert "list/post: 1 strategies [1]" in watched.stdout


async def test_create_without_an_agent_explains_the_timeout() -> None:
    """Nobody serves the device: exit 1 and a hint about port, uid and prefix."""
    if not port_open(1883):
        missing_service("no Mosquitto on 127.0.0.1:1883")
    uid = f"gg-nobody-{uuid.uuid4().hex[:8]}"
    done = await run_example("create_and_sync.py", "--device-uid", uid, "--timeout-s", "0.5")
    assert done.returncode == 1
    assert "no EMS answered on 127.0.0.1:1883" in done.stderr
    assert uid in done.stderr
