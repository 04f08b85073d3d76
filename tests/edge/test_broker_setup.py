"""The shipped broker set-up (examples/broker): TLS with client certificates, the CN as the
username, the ACL. The agent works on it; another device's certificate can neither read nor
publish this device's topics; a client without a certificate cannot connect, so cannot take
the agent's client id, and another device naming that id does not take the agent's session."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import pytest

from gridguard.protocol.topics import COMMAND_OPS, TopicScheme, build_topic
from gridguard.testing.mosquitto import MosquittoProcess
from tests.edge.conftest import AgentFactory, RunningAgent, make_site, missing_service

pytestmark = pytest.mark.integration

BROKER = Path(__file__).parents[2] / "examples" / "broker"
SCHEME = TopicScheme("custom", prefix="v1/gridguard")
DEVICE = "gg-test-dev-a"
OTHER = "gg-test-dev-b"


@dataclass(frozen=True)
class Setup:
    broker: MosquittoProcess
    pki: Path

    def tls(self, name: str | None) -> aiomqtt.TLSParameters:
        cert = str(self.pki / f"{name}.crt") if name else None
        key = str(self.pki / f"{name}.key") if name else None
        return aiomqtt.TLSParameters(ca_certs=str(self.pki / "ca.crt"), certfile=cert, keyfile=key)

    def client(self, name: str | None, identifier: str | None = None) -> aiomqtt.Client:
        return aiomqtt.Client(
            "127.0.0.1",
            self.broker.port,
            identifier=identifier or f"gg-test-{uuid.uuid4().hex[:8]}",
            tls_params=self.tls(name),
            timeout=5,
        )


def shipped_listener(pki: Path) -> str:
    """The shipped mosquitto.conf's listener settings, pointed at the test's folder."""
    text = (BROKER / "mosquitto.conf").read_text().replace("/etc/mosquitto/gridguard", str(pki))
    keep = []
    for line in text.splitlines():
        if line.startswith(("listener", "persistence", "per_listener_settings")):
            continue  # MosquittoProcess writes these (free port, own folder)
        keep.append(line)
    return "\n".join(keep) + "\n"


@pytest.fixture
def setup() -> Iterator[Setup]:
    if shutil.which("openssl") is None:
        missing_service("openssl is not installed")
    pki = Path(tempfile.mkdtemp(prefix="gridguard-broker-"))
    pki.chmod(0o755)
    subprocess.run(
        ["sh", str(BROKER / "make-certs.sh"), str(pki), "127.0.0.1", "platform", DEVICE, OTHER],
        check=True,
        capture_output=True,
    )
    shutil.copy(BROKER / "acl", pki / "acl")
    for path in pki.iterdir():
        path.chmod(0o644)
    broker = MosquittoProcess(listener=shipped_listener(pki))
    try:
        broker.start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield Setup(broker, pki)
    broker.remove()
    shutil.rmtree(pki, ignore_errors=True)


def command(op: str, device: str) -> tuple[str, str, bytes]:
    mid = str(uuid.uuid4())
    body = {
        "mid": mid,
        "type": f"streaming_overdemand_{op}",
        "device_uid": device,
        "timestamp": 1_717_664_360_213,
    }
    return build_topic(SCHEME, device, op, "command"), mid, json.dumps(body).encode()


class Received(list[bytes]):
    """Payloads received so far; :meth:`wait_for` waits (with a timeout) for one to match."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived = asyncio.Event()

    def add(self, payload: bytes) -> None:
        self.append(payload)
        self.arrived.set()

    async def wait_for(self, needle: bytes, timeout_s: float = 10.0) -> None:
        async def seen() -> None:
            while not any(needle in r for r in self):
                self.arrived.clear()
                await self.arrived.wait()

        await asyncio.wait_for(seen(), timeout_s)


@contextlib.asynccontextmanager
async def listening(client: aiomqtt.Client, topics: list[str]) -> AsyncIterator[Received]:
    """Collect what ``client`` receives on ``topics`` while the block runs."""
    received = Received()

    async def read() -> None:
        async for message in client.messages:
            received.add(message.payload if isinstance(message.payload, bytes) else b"")

    await client.subscribe([(t, 1) for t in topics])
    reader = asyncio.create_task(read())
    try:
        yield received
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader


async def round_trip(platform: aiomqtt.Client, device: str, got: Received) -> None:
    """The platform's sync to ``device`` is answered (waits for the reply)."""
    topic, mid, payload = command("sync", device)
    await platform.publish(topic, payload, qos=1)
    await got.wait_for(mid.encode())


async def start_agent(setup: Setup, agent_factory: AgentFactory, tmp_path: Path) -> RunningAgent:
    site = make_site(
        f"mqtts://127.0.0.1:{setup.broker.port}",
        "custom",
        tmp_path / "edge.db",
        prefix="v1/gridguard",
        tls={
            "ca_file": setup.pki / "ca.crt",
            "cert_file": setup.pki / f"{DEVICE}.crt",
            "key_file": setup.pki / f"{DEVICE}.key",
        },
    )
    site = site.model_copy(update={"device": site.device.model_copy(update={"uid": DEVICE})})
    return await agent_factory(site)  # type: ignore[no-any-return]


def results(device: str) -> list[str]:
    return [build_topic(SCHEME, device, op, "result") for op in COMMAND_OPS]


async def test_agent_serves_the_platform(
    setup: Setup, agent_factory: AgentFactory, tmp_path: Path
) -> None:
    await start_agent(setup, agent_factory, tmp_path)
    async with setup.client("platform") as platform, listening(platform, results(DEVICE)) as got:
        await round_trip(platform, DEVICE, got)


async def test_another_device_can_neither_read_nor_publish_this_devices_topics(
    setup: Setup, agent_factory: AgentFactory, tmp_path: Path
) -> None:
    await start_agent(setup, agent_factory, tmp_path)
    commands = [build_topic(SCHEME, DEVICE, op, "command") for op in COMMAND_OPS]
    async with (
        setup.client("platform") as platform,
        setup.client(OTHER) as other,
        listening(platform, results(DEVICE)) as platform_got,
        listening(other, commands + results(DEVICE)) as other_got,
    ):
        forged_topic, forged_mid, forged = command("sync", DEVICE)
        await other.publish(forged_topic, forged, qos=1)  # a command in this device's name
        await other.publish(results(DEVICE)[0], b'{"forged": true}', qos=1)  # a fake result
        await round_trip(platform, DEVICE, platform_got)  # after both: they had their chance
        assert other_got == []  # it read neither the commands nor the results
        assert not any(forged_mid.encode() in r or b"forged" in r for r in platform_got)


async def test_no_certificate_no_connection_and_no_takeover_of_the_client_id(
    setup: Setup, agent_factory: AgentFactory, tmp_path: Path
) -> None:
    agent = await start_agent(setup, agent_factory, tmp_path)
    with pytest.raises(aiomqtt.MqttError):
        async with setup.client(None, identifier=f"gridguard-{DEVICE}"):
            pass
    async with (
        setup.client(OTHER, identifier=f"gridguard-{DEVICE}"),
        setup.client("platform") as platform,
        listening(platform, results(DEVICE)) as got,
    ):
        await round_trip(platform, DEVICE, got)  # the agent kept its session
    assert agent.agent.connected.is_set()
