"""Test lanes: every test is in exactly one of ``unit``, ``integration`` and ``slow``.

A test without a lane, or with two, stops the collection naming it. A ``unit`` test runs in
this process without I/O: opening a socket, starting a subprocess or opening a SQLite file
fails it (such a test belongs in ``integration``).
"""

from __future__ import annotations

import socket
import sqlite3
import subprocess
from typing import Any, NoReturn

import pytest

LANES = ("unit", "integration", "slow")


def lanes_of(item: pytest.Item) -> list[str]:
    return sorted({mark.name for mark in item.iter_markers() if mark.name in LANES})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    wrong = [
        f"{item.nodeid}: {', '.join(found) if found else 'no lane'}"
        for item in items
        if len(found := lanes_of(item)) != 1
    ]
    if wrong:
        raise pytest.UsageError(
            "every test needs exactly one lane marker (unit, integration or slow):\n  "
            + "\n  ".join(wrong)
        )


def _refuse(what: str) -> Any:
    def refused(*_args: object, **_kwargs: object) -> NoReturn:
        raise AssertionError(f"a unit test must not {what}: mark it integration")

    return refused


@pytest.fixture(autouse=True)
def _unit_tests_stay_in_process(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("unit") is None:
        return
    patch = request.getfixturevalue("monkeypatch")
    for method in ("connect", "connect_ex", "bind"):
        patch.setattr(socket.socket, method, _refuse(f"use a socket ({method})"))
    patch.setattr(subprocess, "Popen", _refuse("start a subprocess"))
    memory_only = sqlite3.connect

    def sqlite_in_memory(database: object, *args: Any, **kwargs: Any) -> sqlite3.Connection:
        if database != ":memory:":
            raise AssertionError(f"a unit test must not open the SQLite file {database}")
        connection: sqlite3.Connection = memory_only(":memory:", *args, **kwargs)
        return connection

    patch.setattr(sqlite3, "connect", sqlite_in_memory)
