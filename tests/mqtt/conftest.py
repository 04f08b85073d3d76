"""A private Mosquitto for the MQTT client's session tests (one per test module)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gridguard.testing.mosquitto import MosquittoProcess, private_broker


@pytest.fixture(scope="module")
def broker() -> Iterator[MosquittoProcess]:
    with private_broker() as process:
        yield process
