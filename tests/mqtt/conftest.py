"""A private Mosquitto for the MQTT client's session tests (one per test module)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from gridguard.testing.mosquitto import MosquittoProcess


@pytest.fixture(scope="module")
def broker() -> Iterator[MosquittoProcess]:
    if not (shutil.which("mosquitto") or Path("/usr/sbin/mosquitto").exists()):
        pytest.skip("the mosquitto binary is not installed")
    process = MosquittoProcess()
    process.start()
    yield process
    process.remove()
