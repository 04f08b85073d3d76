"""`gridguard sim fleet` refuses bad options before connecting anything."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from gridguard.cli import app

pytestmark = pytest.mark.unit
runner = CliRunner()


@pytest.mark.parametrize(
    ("options", "names"),
    [
        (["--prefix", "v1/+/x"], "prefix 'v1/+/x': must not contain MQTT wildcards"),
        (["--prefix", "v1//x"], "must not have empty topic levels"),
        (["--uid-prefix", "a/b"], "device uid 'a/b-00000': must not contain '/'"),
        (["--mqtt-url", "http://127.0.0.1"], "scheme must be mqtt:// or mqtts://"),
    ],
    ids=["wildcard-prefix", "empty-level", "slash-in-uid", "not-mqtt"],
)
def test_bad_options_exit_2_naming_the_rule(options: list[str], names: str) -> None:
    """Each refusal says which option breaks which rule, with exit code 2."""
    result = runner.invoke(app, ["sim", "fleet", "--count", "3", *options])
    assert result.exit_code == 2
    assert names in result.output


def test_count_must_be_positive() -> None:
    """Zero devices is a usage error."""
    result = runner.invoke(app, ["sim", "fleet", "--count", "0"])
    assert result.exit_code == 2
