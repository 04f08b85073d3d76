"""The lane rules in tests/conftest.py, run on a throw-away suite of their own."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

CONFTEST = Path(__file__).with_name("conftest.py")


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST.read_text(encoding="utf-8"))
    pytester.makeini(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\n"
        "markers =\n    unit\n    integration\n    slow\n"
    )
    return pytester


@pytest.mark.parametrize(
    ("marks", "named"),
    [
        ("", "test_it: no lane"),  # forgotten: no lane
        ("@pytest.mark.unit\n@pytest.mark.slow\n", "test_it: slow, unit"),  # two lanes
    ],
    ids=["no-lane", "two-lanes"],
)
def test_a_test_not_in_exactly_one_lane_stops_the_collection(
    suite: pytest.Pytester, marks: str, named: str
) -> None:
    suite.makepyfile(f"import pytest\n\n{marks}def test_it():\n    pass\n")
    result = suite.runpytest_inprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{named}*"])


def test_a_unit_test_that_opens_a_socket_fails(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        "import socket\nimport pytest\n\n@pytest.mark.unit\ndef test_it():\n"
        "    socket.create_connection(('127.0.0.1', 9))\n\n"
        "@pytest.mark.unit\ndef test_pure():\n    assert 1 + 1 == 2\n"
    )
    result = suite.runpytest_inprocess()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*a unit test must not use a socket (connect)*"])
