"""``gridguard devices`` and ``gridguard strategy`` against a running platform and agent."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from gridguard.cli import app
from gridguard.platform.security import Role
from gridguard.testing.examples import CREATE_DATA
from tests.platform.conftest import AgentFactory, Platform, device_seen

pytestmark = pytest.mark.integration


async def gridguard(platform: Platform, token: str | None, *args: str) -> Result:
    """The CLI in a thread, so the platform keeps serving on this loop."""
    env = {"GRIDGUARD_API": platform.url, "GRIDGUARD_TOKEN": token or ""}
    return await asyncio.to_thread(CliRunner().invoke, app, list(args), env=env)


async def test_strategy_commands_end_to_end(
    platform: Platform, agent_factory: AgentFactory, tmp_path: Path
) -> None:
    agent = await agent_factory()
    await device_seen(platform, agent.uid)
    token = await platform.user("cli-op", Role.OPERATOR)
    uid = agent.uid

    created = await gridguard(
        platform,
        token,
        "strategy",
        "create",
        "-d",
        uid,
        "--json",
        "--data",
        json.dumps(CREATE_DATA),
    )
    assert created.exit_code == 0, created.output
    strategy_id = json.loads(created.output)["data"]["id"]
    updated = await gridguard(
        platform,
        token,
        "strategy",
        "update",
        str(strategy_id),
        "-d",
        uid,
        "--data",
        '{"streaming_condition": 25}',
    )
    assert updated.exit_code == 0, updated.output
    assert "updated: EMS answered 200" in updated.output
    synced = await gridguard(platform, token, "strategy", "sync", "-d", uid)
    assert "on 25 kW" in synced.output
    batch = tmp_path / "batch.json"
    batch.write_text(json.dumps([{**CREATE_DATA, "device_type": 3}]))
    applied = await gridguard(platform, token, "strategy", "apply", "-d", uid, "-f", str(batch))
    assert applied.exit_code == 0, applied.output
    listed = await gridguard(platform, token, "strategy", "list", "-d", uid, "--json")
    assert {s["device_type"] for s in json.loads(listed.output)} >= {2}
    shown = await gridguard(platform, token, "strategy", "show", str(strategy_id), "-d", uid)
    assert "streaming_condition" in shown.output
    deleted = await gridguard(platform, token, "strategy", "delete", str(strategy_id), "-d", uid)
    assert deleted.exit_code == 0, deleted.output
    devices = await gridguard(platform, token, "devices", "list", "--json")
    assert [d["uid"] for d in json.loads(devices.output)["items"]] == [uid]
    device = await gridguard(platform, token, "devices", "show", uid)
    assert device.exit_code == 0
    assert uid in device.output


async def test_errors_are_readable(platform: Platform, agent_factory: AgentFactory) -> None:
    agent = await agent_factory()
    await device_seen(platform, agent.uid)
    token = await platform.user("cli-op2", Role.OPERATOR)
    refused = await gridguard(
        platform,
        token,
        "strategy",
        "create",
        "-d",
        agent.uid,
        "--data",
        json.dumps({**CREATE_DATA, "ele_meter_id": 77}),
    )
    assert refused.exit_code == 1
    assert "422 Unprocessable Entity: data.ele_meter_id: meter 77" in refused.output
    assert "(command " in refused.output
    anonymous = await gridguard(platform, None, "devices", "list")
    assert anonymous.exit_code == 1
    assert "401 Unauthorized: missing token" in anonymous.output
    not_json = await gridguard(
        platform, token, "strategy", "create", "-d", agent.uid, "--data", "{nope"
    )
    assert (not_json.exit_code, "the body is not JSON: line 1 column 2" in not_json.output) == (
        2,
        True,
    )
