"""A command route checks its token inside the command's insert transaction: the answers must
stay those of a check before anything else (401 / 403 before 404 / 422), with nothing written,
and a revocation through another instance must stop the next command at once."""

from __future__ import annotations

from typing import Any

import pytest

from gridguard.platform.security import Role
from gridguard.testing.examples import CREATE_DATA
from tests.platform.conftest import Platform, PlatformFactory

pytestmark = pytest.mark.integration

UID = "gg-auth-1"
BAD_BODY = {**CREATE_DATA, "streaming_condition": -1}


async def _device(platform: Platform, prefix: str) -> None:
    body = {"uid": UID, "scheme": "custom", "prefix": prefix}
    assert (await platform.admin.post("/api/devices", json=body)).status_code == 201


async def _commands(platform: Platform) -> int:
    total: int = (await platform.admin.get("/api/commands")).json()["total"]
    return total


CASES: list[tuple[str, str, str, Any, int]] = [
    # (who, method, path after /api/devices/, body, status)
    ("unknown", "post", f"{UID}/strategies", BAD_BODY, 401),
    ("unknown", "patch", f"{UID}/strategies/0", {"streaming_condition": 1}, 401),
    ("unknown", "post", "no-such-device/sync", None, 401),
    ("viewer", "post", f"{UID}/strategies", BAD_BODY, 403),
    ("viewer", "patch", f"{UID}/strategies/0", {"streaming_condition": 1}, 403),
    ("viewer", "patch", f"{UID}/strategies/1", {"streaming_condition": -1}, 403),
    ("viewer", "put", f"{UID}/strategies", [], 403),
    ("viewer", "delete", "no-such-device/strategies/1", None, 403),
    ("viewer", "post", f"{UID}/sync", None, 403),
    ("operator", "post", f"{UID}/strategies", BAD_BODY, 422),
    ("operator", "patch", f"{UID}/strategies/0", {"streaming_condition": 1}, 422),
    ("operator", "patch", f"{UID}/strategies/{2**60}", {"streaming_condition": 1}, 422),
    ("operator", "post", "no-such-device/sync", None, 404),
]


async def test_a_refused_token_wins_over_every_other_refusal(
    platform: Platform, prefix: str
) -> None:
    await _device(platform, prefix)
    tokens = {
        "unknown": "ggp_not-a-token",
        "viewer": await platform.user("vic", Role.VIEWER),
        "operator": await platform.user("ola", Role.OPERATOR),
    }
    clients = {who: platform.client(token) for who, token in tokens.items()}
    for who, method, path, body, status in CASES:
        kwargs = {} if body is None else {"json": body}
        response = await clients[who].request(method, f"/api/devices/{path}", **kwargs)
        assert response.status_code == status, (who, method, path, response.text)
        detail = response.json()["detail"]
        if status == 401:
            assert detail == "missing, unknown or revoked token"
            assert response.headers["WWW-Authenticate"] == "Bearer"
        if status == 403:
            assert detail == "role viewer may not do this: needs operator"
    wire_id = await clients["operator"].patch(
        f"/api/devices/{UID}/strategies/{2**60}", json={"streaming_condition": 1}
    )
    assert wire_id.json()["detail"].startswith("data.id: must be a positive integer id")
    assert await _commands(platform) == 0


async def test_a_command_with_a_token_revoked_on_another_instance_is_refused_at_once(
    platform_factory: PlatformFactory, prefix: str
) -> None:
    first, second = await platform_factory(), await platform_factory()
    await _device(first, prefix)
    made = await first.admin.post("/api/tokens", json={"name": "ops"})
    on_second = second.client(made.json()["token"])
    revoked = await first.client(made.json()["token"]).delete(f"/api/tokens/{made.json()['id']}")
    assert revoked.status_code == 200
    response = await on_second.post(f"/api/devices/{UID}/strategies", json=CREATE_DATA)
    assert response.status_code == 401
    assert await _commands(second) == 0


async def test_command_routes_keep_the_bearer_scheme_in_openapi(platform: Platform) -> None:
    paths = (await platform.admin.get("/openapi.json")).json()["paths"]
    read = paths["/api/devices/{uid}"]["get"]["security"]
    assert read == [{"HTTPBearer": []}]
    for path, method in [
        ("/api/devices/{uid}/strategies", "post"),
        ("/api/devices/{uid}/strategies/{strategy_id}", "patch"),
        ("/api/devices/{uid}/sync", "post"),
    ]:
        assert paths[path][method]["security"] == read, (path, method)
