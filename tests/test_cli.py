"""The `gridguard` command as a newcomer meets it: help, schema export, config errors, table."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gridguard.cli import app
from gridguard.edge.service import CommandService
from gridguard.site.config import load_site_config
from gridguard.store.sql import SqlStrategyStore

ROOT = Path(__file__).parents[1]
EXAMPLE = ROOT / "examples" / "edge.toml"
runner = CliRunner()


@pytest.mark.unit
def test_help_lists_the_commands() -> None:
    """`gridguard --help` names every sub-command with a one-line purpose."""
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("edge", "sim", "bench", "schema", "demo"):
        assert command in result.output


@pytest.mark.integration
def test_python_dash_m_runs_the_same_cli() -> None:
    """`python -m gridguard` is the same entry point."""
    result = subprocess.run(
        [sys.executable, "-m", "gridguard", "edge", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert "strategies" in result.stdout


@pytest.mark.unit
def test_schema_writes_one_file_per_message(tmp_path: Path) -> None:
    """11 message types: list/post and 5 ops x (command, result)."""
    result = runner.invoke(app, ["schema", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in tmp_path.glob("*.schema.json"))
    assert len(files) == 11
    create = json.loads((tmp_path / "streaming_overdemand.create.command.schema.json").read_text())
    assert "data" in create["required"]
    assert "11 schemas written" in result.output


@pytest.mark.unit
@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("[[storage]]\nid = 3", "[[storage]]\nid = -3"),
            ":65: storage[1].id: Input should be greater than 0",
        ),
        (
            ('scheme = "custom"', 'scheme = "wudun"'),
            ":10: mqtt: scheme 'wudun' needs mqtt.product_key",
        ),
        (
            ("meter_id = 10", "meter_id = 11"),
            ": storage[2].meter_id: meter 11 is not in [[meters]]",
        ),
        (
            ("rated_kw = 120", "rated_kw = 120\nratedkw = 1"),
            (
                ":103: chargers[1].ratedkw: unknown key"
                " (check the spelling against examples/edge.toml)"
            ),
        ),
        (
            ('time_zone = "Asia/Shanghai"', 'time_zone = "Mars/Olympus"'),
            ":22: site: time_zone 'Mars/Olympus' is not a known IANA zone",
        ),
    ],
    ids=["negative-id", "scheme-parameter", "unknown-meter", "misspelt-key", "bad-zone"],
)
def test_wrong_config_refused_naming_file_key_rule(
    tmp_path: Path, change: tuple[str, str], expected: str
) -> None:
    """The agent refuses to start (exit 2) and says which file and line, which key (arrays of
    tables counted from 1) and which rule."""
    config = tmp_path / "edge.toml"
    config.write_text(EXAMPLE.read_text().replace(*change, 1))
    result = runner.invoke(app, ["edge", "run", "--config", str(config)])
    assert result.exit_code == 2
    assert f"{config}{expected}" in result.output


@pytest.mark.unit
def test_missing_config_file_is_one_clear_line(tmp_path: Path) -> None:
    """A path that does not exist: the file and the reason, no traceback."""
    result = runner.invoke(app, ["edge", "strategies", "--config", str(tmp_path / "nope.toml")])
    assert result.exit_code == 2
    assert "nope.toml: cannot read: No such file or directory" in result.output
    assert "Traceback" not in result.output


@pytest.mark.integration
def test_strategies_table_offline(tmp_path: Path) -> None:
    """`edge strategies` reads the store without MQTT and prints one row per strategy."""
    db = f"sqlite:///{tmp_path / 'edge.db'}"

    async def seed() -> None:
        site = load_site_config(EXAMPLE).model_copy()
        store = SqlStrategyStore(db)
        await store.open()
        service = CommandService(site=site, store=store)
        await service.load()
        payload = json.dumps(
            {
                "mid": "3e681859-6917-4b9a-9afd-3f162cd185bd",
                "type": "streaming_overdemand_create",
                "device_uid": site.device.uid,
                "timestamp": 1,
                "data": {
                    "ele_meter_id": 9,
                    "streaming_status": 1,
                    "streaming_condition": 5,
                    "individual_phase_streaming_status": 2,
                    "over_demand_status": 1,
                    "over_demand_condition": [800] * 12,
                    "dynamic_demand_percentage": 90,
                },
            }
        )
        assert (await service.handle("create", payload.encode())).code == 200
        await store.close()

    asyncio.run(seed())
    result = runner.invoke(app, ["edge", "strategies", "--config", str(EXAMPLE), "--db", db])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:3] == ["id", "meter", "class"]
    assert "on ≥5 kW" in lines[2]
    assert "on ≤800 kW this month" in lines[2]


@pytest.mark.integration
def test_strategies_on_empty_store(tmp_path: Path) -> None:
    """An empty store says so instead of printing an empty table."""
    db = f"sqlite:///{tmp_path / 'empty.db'}"
    result = runner.invoke(app, ["edge", "strategies", "--config", str(EXAMPLE), "--db", db])
    assert result.exit_code == 0
    assert "no strategies stored" in result.output
