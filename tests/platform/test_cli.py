"""``gridguard platform user add`` and ``gridguard platform run`` as real processes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from gridguard.ports import free_port
from tests.platform.conftest import BROKER, eventually

pytestmark = pytest.mark.integration
GRIDGUARD = [sys.executable, "-m", "gridguard"]


def user_add(
    db: str, *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*GRIDGUARD, "platform", "user", "add", *args, "--db", db],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_user_add_refuses_a_short_password(tmp_path: Path) -> None:
    done = user_add(f"sqlite:///{tmp_path / 'p.db'}", "amy", "--password-stdin", stdin="short\n")
    assert done.returncode == 2
    assert "password: must be at least 8 characters" in done.stderr
    assert "short" not in done.stderr.replace("password: must be at least", "")


async def test_run_serves_logins_of_a_cli_user(tmp_path: Path, prefix: str) -> None:
    """user add (stdin) -> platform run -> login -> SIGTERM exits 0; no secret logged."""
    db, password = f"sqlite:///{tmp_path / 'p.db'}", "cli-secret-password"
    added = user_add(db, "root", "--role", "admin", "--password-stdin", stdin=password + "\n")
    assert added.returncode == 0, added.stderr
    env_added = user_add(db, "eve", env={"GRIDGUARD_PASSWORD": "env-secret-password"})
    assert env_added.returncode == 0, env_added.stderr
    port = free_port()
    process = subprocess.Popen(
        [
            *GRIDGUARD,
            "platform",
            "run",
            "--db",
            db,
            "--mqtt-url",
            BROKER,
            "--listen",
            f"127.0.0.1:{port}",
            "--prefix",
            prefix,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:

            async def healthy() -> bool:
                try:
                    return (await http.get("/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(healthy, timeout_s=30, what="platform run to serve")
            login = await http.post("/api/auth/login", json={"name": "root", "password": password})
            assert login.status_code == 200
            token = login.json()["token"]
            me = await http.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
            assert me.json()["role"] == "admin"
            openapi = (await http.get("/openapi.json")).json()
            assert "/api/devices/{uid}/strategies" in openapi["paths"]
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = await asyncio.to_thread(process.communicate, timeout=30)
    assert process.returncode == 0, err
    assert "platform on http://127.0.0.1" in err
    assert password not in out + err
    assert token not in out + err
