"""A subscription the broker refuses (SUBACK 0x80, here a Mosquitto ACL) is an error event;
the agent says it is degraded (log, status topic) and retries until it is granted."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from gridguard.protocol.topics import build_topic
from gridguard.testing.mosquitto import MosquittoProcess
from tests.edge.conftest import AgentFactory, make_site, missing_service, scheme_of

pytestmark = pytest.mark.integration

UID = "gg-test-acl-0001"
PREFIX = "acme/ems/v1"


DYNSEC_PLUGIN = Path("/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so")
CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
DENIED = f"{PREFIX}/{UID}/streaming_overdemand/delete/command"


def dynsec_config() -> dict[str, object]:
    """Anonymous clients may do anything but subscribe to this device's delete commands."""
    allow_all = {"publishClientSend": True, "publishClientReceive": True}
    return {
        "defaultACLAccess": {**allow_all, "subscribe": True, "unsubscribe": True},
        "clients": [],
        "groups": [{"groupname": "anonymous", "roles": [{"rolename": "no-delete"}]}],
        "roles": [
            {
                "rolename": "no-delete",
                "acls": [
                    {"acltype": "subscribePattern", "topic": DENIED, "priority": 0, "allow": False},
                    {"acltype": "publishClientSend", "topic": CONTROL_TOPIC, "allow": True},
                    {"acltype": "subscribePattern", "topic": "$CONTROL/#", "allow": True},
                ],
            }
        ],
        "anonymousGroup": "anonymous",
    }


@pytest.fixture
def acl_broker() -> Iterator[MosquittoProcess]:
    """Mosquitto's ACL file only filters delivery; its dynamic-security plugin refuses the
    subscription itself (SUBACK 0x80), as a broker ACL in the field would."""
    if not DYNSEC_PLUGIN.exists():
        missing_service(f"{DYNSEC_PLUGIN} is not installed")
    broker = MosquittoProcess()
    config = broker.folder / "dynsec.json"
    config.write_text(json.dumps(dynsec_config()))
    config.chmod(0o666)
    listener = f"allow_anonymous true\nplugin {DYNSEC_PLUGIN}\nplugin_opt_config_file {config}\n"
    broker = MosquittoProcess(broker.folder, listener=listener, per_listener_settings=False)
    try:
        broker.start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield broker
    broker.remove()


async def test_refused_subscription_is_degraded_then_retried(
    acl_broker: MosquittoProcess,
    agent_factory: AgentFactory,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "gridguard.edge")
    site = make_site(
        acl_broker.url, db_path=tmp_path / "edge.db", status_enabled=True, status_interval_s=0.2
    )
    site = site.model_copy(update={"device": site.device.model_copy(update={"uid": UID})})
    status_topic = build_topic(scheme_of(site), UID, "status", "post")
    watcher = aiomqtt.Client("127.0.0.1", acl_broker.port)
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(watcher)
        stack.push_async_exit(_ignore_disconnect)
        await watcher.subscribe(status_topic, qos=0)
        agent = await agent_factory(site)
        assert agent.agent.health.refused == {"delete"}
        events = [r.getMessage() for r in caplog.records]
        assert any('"event": "subscription_refused"' in e and "delete" in e for e in events)
        assert not any("; serving" in e for e in events)
        assert (await next_status(watcher))["agent"]["state"] == "degraded"
        async with agent.client() as ems:
            assert (await ems.sync()).code == 200  # the granted ops are still served
        remove = {
            "command": "removeRoleACL",
            "rolename": "no-delete",
            "acltype": "subscribePattern",
            "topic": DENIED,
        }
        with contextlib.suppress(aiomqtt.MqttError):  # it is disconnected too
            await watcher.publish(CONTROL_TOPIC, json.dumps({"commands": [remove]}), qos=0)
            await asyncio.wait_for(agent.agent.connected.wait(), 10)
    # Mosquitto disconnects the clients of a changed role; the agent subscribes again.
    async with aiomqtt.Client("127.0.0.1", acl_broker.port) as watcher:
        await watcher.subscribe(status_topic, qos=0)
        while (await next_status(watcher))["agent"]["state"] != "serving":
            pass
    assert agent.agent.health.refused == set()
    async with agent.client(timeout_s=10) as ems:
        assert (await ems.delete(99)).code == 400  # answered now: no such strategy


async def _ignore_disconnect(*exc: object) -> bool:
    return isinstance(exc[1], aiomqtt.MqttError)


async def next_status(watcher: aiomqtt.Client) -> dict[str, Any]:
    async def first() -> dict[str, Any]:
        async for message in watcher.messages:
            assert isinstance(message.payload, bytes)
            status: dict[str, Any] = json.loads(message.payload)
            return status
        raise AssertionError("watcher disconnected")

    return await asyncio.wait_for(first(), 30)
