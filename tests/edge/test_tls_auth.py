"""The agent on a broker of its own with TLS and a password: mqtts://user:pw@host, CA file."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from gridguard.client import StrategyClient
from gridguard.edge.agent import EdgeAgent
from gridguard.edge.service import CommandService
from gridguard.store.memory import MemoryStrategyStore
from gridguard.testing.mosquitto import MosquittoProcess
from gridguard.testing.wait import wait_for
from tests.edge.conftest import AgentFactory, make_site, missing_service, scheme_of
from tests.edge.test_mqtt import CREATE

pytestmark = pytest.mark.integration


def run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


def make_pki(folder: Path) -> None:
    """A CA and a server certificate for 127.0.0.1, made with the openssl command."""
    ca_key, ca_crt = str(folder / "ca.key"), str(folder / "ca.crt")
    key, csr, crt = (str(folder / n) for n in ("server.key", "server.csr", "server.crt"))
    run(
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=gridguard-test-ca",
        "-keyout",
        ca_key,
        "-out",
        ca_crt,
    )
    run(
        "openssl",
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        key,
        "-out",
        csr,
    )
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run(
        "openssl",
        "x509",
        "-req",
        "-in",
        csr,
        "-CA",
        ca_crt,
        "-CAkey",
        ca_key,
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        str(folder / "san.ext"),
        "-out",
        crt,
    )
    for path in folder.iterdir():
        path.chmod(0o644)


@pytest.fixture
def pki() -> Iterator[Path]:
    """A folder the mosquitto user can read (pytest's tmp_path is private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="gridguard-pki-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def tls_broker(pki: Path) -> Iterator[MosquittoProcess]:
    try:
        make_pki(pki)
        run("mosquitto_passwd", "-b", "-c", str(pki / "passwd"), "ems", "s3cret")
    except (OSError, subprocess.CalledProcessError) as exc:
        missing_service(f"openssl/mosquitto_passwd unavailable: {exc}")
    (pki / "passwd").chmod(0o644)
    listener = (
        f"cafile {pki / 'ca.crt'}\ncertfile {pki / 'server.crt'}\nkeyfile {pki / 'server.key'}\n"
        f"allow_anonymous false\npassword_file {pki / 'passwd'}\n"
    )
    broker = MosquittoProcess(listener=listener)
    try:
        broker.start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield broker
    broker.remove()


def refused_logins(broker: MosquittoProcess) -> int:
    """How many logins the broker's log says it refused (the id of a refused client is unknown
    to it; the broker is the test's own, so every refusal is the agent's)."""
    return broker.log().count("disconnected, not authorised.")


async def test_tls_with_password(
    tls_broker: MosquittoProcess, pki: Path, tmp_path: Path, agent_factory: AgentFactory
) -> None:
    """mqtts:// with user:password and a CA file: the agent connects and serves."""
    ca = pki / "ca.crt"
    url = f"mqtts://ems:s3cret@127.0.0.1:{tls_broker.port}"
    site = make_site(url, "user", tmp_path / "edge.db", tls={"ca_file": ca})
    await agent_factory(site)
    async with StrategyClient(url, scheme_of(site), site.device.uid, ca_file=ca) as ems:
        assert (await ems.create(CREATE)).code == 200


async def test_wrong_password_keeps_retrying_without_crashing(
    tls_broker: MosquittoProcess, pki: Path
) -> None:
    """A refused login is retried with backoff; the agent neither connects nor dies: the
    broker refuses at least two of its logins and never lets it in."""
    ca = pki / "ca.crt"
    url = f"mqtts://ems:wrong@127.0.0.1:{tls_broker.port}"
    site = make_site(url, "user", tls={"ca_file": ca})
    service = CommandService(site=site, store=MemoryStrategyStore())
    agent = EdgeAgent(site, service)
    stop = asyncio.Event()
    ever_connected = asyncio.create_task(agent.connected.wait())
    task = asyncio.create_task(agent.run(stop))
    await wait_for(
        lambda: refused_logins(tls_broker) >= 2,
        20,
        "the broker to refuse two logins",
        state=tls_broker.log,
    )
    assert not ever_connected.done()
    assert "New client connected" not in tls_broker.log()
    assert not task.done()
    stop.set()
    await asyncio.wait_for(task, 10)
    ever_connected.cancel()
