"""Roles, tokens, login limits, and that no password or token ever reaches a log."""

from __future__ import annotations

import logging

import pytest

from gridguard.platform.security import Role
from gridguard.testing.examples import CREATE_DATA
from tests.platform.conftest import AgentFactory, Platform, PlatformFactory, device_seen

pytestmark = pytest.mark.integration


async def test_viewer_reads_but_cannot_create(
    platform: Platform, agent_factory: AgentFactory
) -> None:
    """403 for a viewer's mutation, and nothing is sent or audited."""
    agent = await agent_factory()
    await device_seen(platform, agent.uid)
    viewer = platform.client(await platform.user("vera", Role.VIEWER))
    assert (await viewer.get(f"/api/devices/{agent.uid}")).status_code == 200
    response = await viewer.post(f"/api/devices/{agent.uid}/strategies", json=CREATE_DATA)
    assert response.status_code == 403
    assert "needs operator" in response.json()["detail"]
    assert (await viewer.get("/api/commands")).json()["total"] == 0
    assert (await viewer.get("/api/users")).status_code == 403


async def test_operator_mutation_is_audited_with_its_user(
    platform: Platform, agent_factory: AgentFactory
) -> None:
    agent = await agent_factory()
    await device_seen(platform, agent.uid)
    operator = platform.client(await platform.user("otto", Role.OPERATOR))
    created = await operator.post(f"/api/devices/{agent.uid}/strategies", json=CREATE_DATA)
    assert created.status_code == 201, created.text
    audit = (await operator.get("/api/commands", params={"user": "otto"})).json()
    assert [(c["op"], c["user_name"], c["request"]["ele_meter_id"]) for c in audit["items"]] == [
        ("create", "otto", CREATE_DATA["ele_meter_id"])
    ]


async def test_missing_and_revoked_tokens_fail_at_once(platform: Platform) -> None:
    anonymous = platform.client()
    assert (await anonymous.get("/api/devices")).status_code == 401
    made = await platform.admin.post("/api/tokens", json={"name": "ci"})
    assert made.status_code == 201
    token = made.json()["token"]
    client = platform.client(token)
    assert (await client.get("/api/devices")).status_code == 200
    revoked = await client.delete(f"/api/tokens/{made.json()['id']}")
    assert revoked.json()["revoked_at"] is not None
    response = await client.get("/api/devices")
    assert response.status_code == 401
    assert response.json()["detail"] == "missing, unknown or revoked token"


async def test_a_token_revoked_on_one_instance_fails_on_the_other_at_once(
    platform_factory: PlatformFactory,
) -> None:
    first, second = await platform_factory(), await platform_factory()
    made = await first.admin.post("/api/tokens", json={"name": "ci"})
    token = made.json()["token"]
    on_second = second.client(token)
    assert (await on_second.get("/api/devices")).status_code == 200
    assert (await on_second.get("/api/devices")).status_code == 200  # checked twice: no cache
    revoked = await first.client(token).delete(f"/api/tokens/{made.json()['id']}")
    assert revoked.status_code == 200
    assert (await on_second.get("/api/devices")).status_code == 401


async def test_login_is_rate_limited(platform_factory: PlatformFactory) -> None:
    """After the allowed failures even the right password is refused (429 with Retry-After)."""
    platform = await platform_factory(login_attempts=3, login_window_s=600)
    await platform.user("lena", Role.VIEWER, password="right-password")
    anonymous = platform.client()
    good = {"name": "lena", "password": "right-password"}
    logged_in = await anonymous.post("/api/auth/login", json=good)
    assert logged_in.status_code == 200
    me = await platform.client(logged_in.json()["token"]).get("/api/auth/me")
    assert me.json()["name"] == "lena"
    for _ in range(3):
        bad = await anonymous.post("/api/auth/login", json={**good, "password": "wrong-one"})
        assert bad.status_code == 401
    limited = await anonymous.post("/api/auth/login", json=good)
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) > 0


async def test_the_login_limit_holds_across_instances(platform_factory: PlatformFactory) -> None:
    """Failures counted by one instance stop a login on the other: the limit lives in the
    database, so a second instance is no second set of guesses."""
    first = await platform_factory(login_attempts=2, login_window_s=600)
    second = await platform_factory(login_attempts=2, login_window_s=600)
    await first.user("lena", Role.VIEWER, password="right-password")
    good = {"name": "lena", "password": "right-password"}
    bad = {**good, "password": "wrong-one"}
    assert (await first.client().post("/api/auth/login", json=bad)).status_code == 401
    assert (await second.client().post("/api/auth/login", json=bad)).status_code == 401
    for instance in (first, second):
        limited = await instance.client().post("/api/auth/login", json=good)
        assert limited.status_code == 429, limited.text


async def test_a_good_login_clears_the_count(platform_factory: PlatformFactory) -> None:
    platform = await platform_factory(login_attempts=2, login_window_s=600)
    await platform.user("lena", Role.VIEWER, password="right-password")
    good = {"name": "lena", "password": "right-password"}
    bad = {**good, "password": "wrong-one"}
    anonymous = platform.client()
    assert (await anonymous.post("/api/auth/login", json=bad)).status_code == 401
    assert (await anonymous.post("/api/auth/login", json=good)).status_code == 200
    assert (await anonymous.post("/api/auth/login", json=bad)).status_code == 401
    assert (await anonymous.post("/api/auth/login", json=good)).status_code == 200


async def test_admin_manages_users(platform: Platform) -> None:
    made = await platform.admin.post(
        "/api/users", json={"name": "una", "password": "first-password", "role": "operator"}
    )
    assert made.status_code == 201, made.text
    assert "password" not in made.json()
    taken = await platform.admin.post(
        "/api/users", json={"name": "una", "password": "first-password"}
    )
    assert taken.status_code == 409
    short = await platform.admin.post("/api/users", json={"name": "ulf", "password": "short"})
    assert short.status_code == 422
    assert short.json()["detail"].startswith("password: ")


async def test_no_password_or_token_in_logs(
    platform: Platform, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    password = "hunter2-very-secret"
    made = await platform.admin.post(
        "/api/users", json={"name": "lou", "password": password, "role": "viewer"}
    )
    assert made.status_code == 201
    anonymous = platform.client()
    await anonymous.post("/api/auth/login", json={"name": "lou", "password": "wrong-" + password})
    login = await anonymous.post("/api/auth/login", json={"name": "lou", "password": password})
    token = login.json()["token"]
    await platform.client(token).get("/api/devices")
    await platform.client(token + "x").get("/api/devices")
    assert caplog.records, "the platform logged nothing: the check would be empty"
    assert password not in caplog.text
    assert token not in caplog.text
    assert token[len("ggp_") + 4 :] not in caplog.text
