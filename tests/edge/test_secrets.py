"""No secret in any log line; the broker password from the URL, an environment variable or a
file; configuration errors end the agent instead of being retried forever."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gridguard.client import StrategyClient
from gridguard.edge.agent import EdgeAgent
from gridguard.edge.service import CommandService
from gridguard.mqtt.session import client_kwargs
from gridguard.redact import redact
from gridguard.site.config import ConfigError, MqttConfig, parse_site_config
from gridguard.store.memory import MemoryStrategyStore
from gridguard.testing.mosquitto import MosquittoProcess
from tests.edge.conftest import AgentFactory, make_site, missing_service, scheme_of
from tests.edge.test_resilience import write_config

SECRET = "s3cr3t-Pw"


@pytest.mark.unit
@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("connected to mqtt://ems:pw@h:1883", "connected to mqtt://ems:***@h:1883"),
        ("mqtts://u:p%40ss@h", "mqtts://u:***@h"),
        ("postgresql://gg:pw@127.0.0.1/db failed", "postgresql://gg:***@127.0.0.1/db failed"),
        ("dsn host=h password=pw user=u", "dsn host=h password=*** user=u"),
        ("mqtt://h:1883 and sqlite:///x.db", "mqtt://h:1883 and sqlite:///x.db"),
    ],
    ids=["mqtt", "escaped", "postgres", "key-value", "no-secret-untouched"],
)
def test_redact(text: str, shown: str) -> None:
    """Passwords go, users and hosts stay (so the log still says where)."""
    assert redact(text) == shown


@pytest.fixture
def password_broker() -> Iterator[MosquittoProcess]:
    broker = MosquittoProcess()
    passwd = broker.folder / "passwd"
    try:
        subprocess.run(
            ["mosquitto_passwd", "-b", "-c", str(passwd), "ems", SECRET],
            check=True,
            capture_output=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        missing_service(f"mosquitto_passwd unavailable: {exc}")
    passwd.chmod(0o644)
    broker = MosquittoProcess(
        broker.folder, listener=f"allow_anonymous false\npassword_file {passwd}\n"
    )
    try:
        broker.start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield broker
    broker.remove()


def no_secret_logged(caplog: pytest.LogCaptureFixture) -> None:
    for record in caplog.records:
        text = record.getMessage() + (str(record.exc_info[1]) if record.exc_info else "")
        assert SECRET not in text, text


@pytest.mark.integration
async def test_password_never_logged_on_connect(
    password_broker: MosquittoProcess,
    agent_factory: AgentFactory,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"mqtt://ems:{SECRET}@127.0.0.1:{password_broker.port}"
    agent = await agent_factory(make_site(url, db_path=tmp_path / "edge.db"))
    async with agent.client() as ems:
        assert (await ems.sync()).code == 200
    assert any("connected to" in r.getMessage() for r in caplog.records)
    no_secret_logged(caplog)


@pytest.mark.integration
@pytest.mark.parametrize("source", ["env", "file"])
async def test_password_from_env_or_file(
    password_broker: MosquittoProcess,
    agent_factory: AgentFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    source: str,
) -> None:
    """The URL carries no password; the agent reads it at connect time."""
    url = f"mqtt://ems@127.0.0.1:{password_broker.port}"
    if source == "env":
        monkeypatch.setenv("GG_TEST_MQTT_PASSWORD", SECRET)
        extra = {"password_env": "GG_TEST_MQTT_PASSWORD"}
    else:
        (tmp_path / "pw").write_text(SECRET + "\n")
        extra = {"password_file": str(tmp_path / "pw")}
    agent = await agent_factory(make_site(url, db_path=tmp_path / "edge.db", **extra))
    platform_url = f"mqtt://ems:{SECRET}@127.0.0.1:{password_broker.port}"
    async with StrategyClient(platform_url, scheme_of(agent.site), agent.site.device.uid) as ems:
        assert (await ems.sync()).code == 200


@pytest.mark.unit
@pytest.mark.parametrize(
    "url",
    [f"mqtt://ems:{SECRET}@127.0.0.1:notaport", f"mqtt://ems:{SECRET}@:1883", "http://h"],
    ids=["bad-port", "no-host", "scheme"],
)
def test_malformed_url_is_a_config_error_without_the_secret(url: str) -> None:
    """Refused when the file is read (no retry loop), and the message hides the password."""
    data = make_site("mqtt://127.0.0.1").model_dump()
    data["mqtt"]["url"] = url
    with pytest.raises(ConfigError) as caught:
        parse_site_config(data)
    assert SECRET not in str(caught.value)
    assert "url" in str(caught.value)


@pytest.mark.unit
def test_unset_password_variable_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GG_TEST_UNSET", raising=False)
    config = MqttConfig(prefix="p", password_env="GG_TEST_UNSET")
    with pytest.raises(ConfigError, match="GG_TEST_UNSET"):
        client_kwargs(config, "dev", config.url)


@pytest.mark.unit
async def test_a_configuration_error_ends_the_agent(tmp_path: Path) -> None:
    """A TLS file that does not exist cannot get better by retrying: run() raises."""
    site = make_site("mqtts://127.0.0.1:1", tls={"ca_file": tmp_path / "missing.crt"})
    agent = EdgeAgent(site, CommandService(site=site, store=MemoryStrategyStore()))
    with pytest.raises(ConfigError, match=r"missing\.crt"):
        await asyncio.wait_for(agent.run(asyncio.Event()), 10)


@pytest.mark.integration
def test_the_agent_process_exits_on_a_configuration_error(tmp_path: Path) -> None:
    """``gridguard edge run`` with a TLS file that does not exist exits with status 2 (a
    supervisor sees it) and names the file, instead of retrying forever."""
    config = write_config(tmp_path, f"mqtts://ems:{SECRET}@127.0.0.1:1", "gg-test-cfg")
    text = config.read_text() + f'\n[mqtt.tls]\nca_file = "{tmp_path / "missing.crt"}"\n'
    config.write_text(text)
    done = subprocess.run(
        [sys.executable, "-m", "gridguard", "edge", "run", "--config", str(config)],
        capture_output=True,
        timeout=60,
        check=False,
    )
    output = (done.stdout + done.stderr).decode()
    assert done.returncode == 2, output
    assert "missing.crt" in output
    assert SECRET not in output
