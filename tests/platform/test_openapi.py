"""Schemathesis against the platform's OpenAPI: no input makes it fail with a 5xx it does not
document, and every response matches its schema."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from schemathesis import Case, checks, openapi

from gridguard.platform.run import Running, run_platform
from gridguard.platform.security import Role
from gridguard.platform.settings import Settings
from gridguard.platform.users import create_token, create_user
from gridguard.testing.mosquitto import port_open
from tests.platform.conftest import BROKER, missing_service

pytestmark = pytest.mark.integration


class Background:
    """The platform on its own event loop in a thread (the schemathesis calls are blocking)."""

    def __init__(self, settings: Settings) -> None:
        self.loop = asyncio.new_event_loop()
        self.running = Running()
        self.stop = asyncio.Event()
        self.settings = settings
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self._main(),))

    async def _main(self) -> None:
        await run_platform(self.settings, self.stop, running=self.running)

    def token(self) -> str:
        async def make() -> str:
            assert self.running.services is not None
            db, now = self.running.services.db, datetime.now(UTC)
            user = await create_user(
                db, name="fuzz", password="fuzz-password", role=Role.ADMIN, now=now
            )
            return (await create_token(db, user_id=user.id, name="fuzz", now=now)).token

        return asyncio.run_coroutine_threadsafe(make(), self.loop).result(30)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    if not port_open(1883):
        missing_service("no Mosquitto on 127.0.0.1:1883")
    db = Path(tmp_path_factory.mktemp("openapi")) / "platform.db"
    settings = Settings(
        db_url=f"sqlite:///{db}",
        mqtt_url=BROKER,
        port=0,
        prefixes=(f"ggp-fuzz-{uuid.uuid4().hex[:8]}",),
        command_timeout_s=0.05,
        command_retries=0,
    )
    background = Background(settings)
    background.thread.start()
    ready = asyncio.run_coroutine_threadsafe(background.running.ready.wait(), background.loop)
    ready.result(30)
    yield background.running.url, background.token()
    background.loop.call_soon_threadsafe(background.stop.set)
    background.thread.join(30)


def test_api_conforms(served: tuple[str, str]) -> None:
    """Every operation, a dozen generated requests each (the pytest plugin of schemathesis
    does not load under this pytest, so hypothesis drives each operation's strategy)."""
    url, token = served
    document = httpx.get(f"{url}/openapi.json", timeout=30).json()
    headers = {"Authorization": f"Bearer {token}"}
    operations = [
        cast("Any", result).ok() for result in openapi.from_dict(document).get_all_operations()
    ]
    assert len(operations) > 25
    for operation in operations:
        if operation.path.startswith("/api/users") and operation.method in {"delete", "patch"}:
            continue  # would lock the fuzzer out of its own account

        @given(case=operation.as_strategy())
        @settings(
            max_examples=12,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,  # the same cases every run: a failure reproduces
        )
        def run(case: Case[Any]) -> None:
            response = case.call(base_url=url, headers=headers)
            case.validate_response(
                response, checks=[checks.not_a_server_error, checks.response_schema_conformance]
            )

        run()
