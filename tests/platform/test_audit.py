"""Mutations other than commands are audited with their user; never with a secret."""

from __future__ import annotations

import pytest

from gridguard.platform.security import Role
from tests.platform.conftest import Platform

pytestmark = pytest.mark.integration


async def test_every_mutation_is_audited_with_its_user(platform: Platform, prefix: str) -> None:
    api = platform.admin
    assert (
        await api.post("/api/devices", json={"uid": "gg-a1", "scheme": "custom", "prefix": prefix})
    ).status_code == 201
    await api.patch("/api/devices/gg-a1", json={"display_name": "Site A"})
    made = await api.post(
        "/api/users", json={"name": "ana", "password": "ana-secret-pass", "role": "viewer"}
    )
    await api.patch(f"/api/users/{made.json()['id']}", json={"role": "operator"})
    token = await api.post("/api/tokens", json={"name": "ci"})
    await api.delete(f"/api/tokens/{token.json()['id']}")
    anonymous = platform.client()
    await anonymous.post("/api/auth/login", json={"name": "ana", "password": "wrong-password"})
    await anonymous.post("/api/auth/login", json={"name": "ana", "password": "ana-secret-pass"})
    await api.delete("/api/devices/gg-a1")

    events = (await api.get("/api/audit", params={"limit": 100})).json()
    assert [(e["action"], e["user_name"], e["target"]) for e in reversed(events["items"])] == [
        ("device.register", "admin-0", "gg-a1"),
        ("device.update", "admin-0", "gg-a1"),
        ("user.create", "admin-0", "ana"),
        ("user.update", "admin-0", str(made.json()["id"])),
        ("token.create", "admin-0", str(token.json()["id"])),
        ("token.revoke", "admin-0", str(token.json()["id"])),
        ("auth.login_failed", "ana", "ana"),
        ("auth.login", "ana", "ana"),
        ("device.delete", "admin-0", "gg-a1"),
    ]
    text = str(events)
    assert "ana-secret-pass" not in text
    assert token.json()["token"] not in text
    only_ana = (await api.get("/api/audit", params={"user": "ana"})).json()
    assert only_ana["total"] == 2


async def test_audit_is_for_admins(platform: Platform) -> None:
    viewer = platform.client(await platform.user("val", Role.OPERATOR))
    assert (await viewer.get("/api/audit")).status_code == 403
