"""The demo's platform settings, login block and fleet: pure parts (no process, no socket)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridguard.demo.dashboard import (
    DEFAULT_FLEET,
    fleet_config,
    fleet_range,
    login_block,
    new_demo_password,
    platform_settings,
)
from gridguard.demo.run import packaged_site
from gridguard.platform.security import check_password_rule

pytestmark = pytest.mark.unit


def test_platform_settings_fit_the_embedded_broker(tmp_path: Path) -> None:
    """SQLite in the data folder, 127.0.0.1, the site's prefix (the fleet shares it), MQTT
    3.1.1 and no shared subscription (amqtt has neither MQTT 5 nor $share)."""
    settings = platform_settings(packaged_site(), 41883, tmp_path, 0)
    assert settings.db_url == f"sqlite:///{tmp_path / 'platform.db'}"
    assert settings.mqtt_url == "mqtt://127.0.0.1:41883"
    assert (settings.host, settings.port) == ("127.0.0.1", 0)
    assert settings.prefixes == ("v1/gridguard",)
    assert settings.share_group is None


def test_demo_password_is_new_each_time_and_passes_the_rule() -> None:
    passwords = {new_demo_password() for _ in range(20)}
    assert len(passwords) == 20
    for password in passwords:
        check_password_rule(password)


def test_login_block_names_url_user_and_password() -> None:
    block = login_block("http://127.0.0.1:40123", "demo", "s3cret-demo-pass")
    assert "  Dashboard   http://127.0.0.1:40123/" in block
    assert "  Log in as   demo" in block
    assert "  Password    s3cret-demo-pass" in block
    assert any("http://127.0.0.1:40123/api/" in line for line in block)


def test_fleet_config_is_on_the_demo_broker_under_the_site_prefix() -> None:
    config = fleet_config(DEFAULT_FLEET, 41883)
    assert config.mqtt_url == "mqtt://127.0.0.1:41883"
    assert config.prefix == "v1/gridguard"
    assert config.stats_interval_s is None
    assert fleet_range(config) == f"sim-00000 .. sim-{DEFAULT_FLEET - 1:05d}"


def test_cli_default_fleet_is_the_measured_one() -> None:
    """The CLI spells the default out (it imports the demo lazily); it must be the same."""
    import inspect  # noqa: PLC0415

    from gridguard.cli import demo  # noqa: PLC0415

    assert inspect.signature(demo).parameters["fleet"].default == DEFAULT_FLEET
