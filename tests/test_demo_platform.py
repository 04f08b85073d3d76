"""`gridguard demo` with its platform and fleet: the printed login opens the REST API and the
dashboard, the fleet and the real site are in the device list, Ctrl-C ends everything."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from gridguard.ports import port_open
from gridguard.testing.demo import Demo
from gridguard.testing.wait import wait_for

pytestmark = pytest.mark.integration

FLEET = 12
SITE_UID = "gg-demo-001"


async def start(folder: Path, *args: str) -> Demo:
    process = subprocess.Popen(
        [sys.executable, "-m", "gridguard", "demo", "--fleet", str(FLEET), *args],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    demo = Demo(process).start_reading()
    await asyncio.to_thread(demo.ready.wait, 90)
    assert process.poll() is None, "\n".join(demo.lines)
    return demo


async def stop(demo: Demo) -> str:
    demo.process.send_signal(signal.SIGINT)
    await asyncio.to_thread(demo.process.wait, 30)
    return "\n".join(demo.lines)


async def api_token(api: httpx.AsyncClient, name: str, password: str) -> str:
    answer = await api.post("/api/auth/login", json={"name": name, "password": password})
    assert answer.status_code == 200, answer.text
    token = answer.json()["token"]
    assert isinstance(token, str)
    return token


async def device_uids(api: httpx.AsyncClient, token: str) -> set[str]:
    answer = await api.get(
        "/api/devices", params={"limit": 100}, headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return {d["uid"] for d in body["items"]}


async def wait_listed(
    api: httpx.AsyncClient, token: str, expected: set[str], timeout_s: float
) -> set[str]:
    """The device list polled (every 0.2 s) until it holds ``expected``; what it held."""
    seen: set[str] = set()

    async def watch() -> None:
        while True:
            seen.update(await device_uids(api, token))
            await asyncio.sleep(0.2)  # the poll period

    watcher = asyncio.create_task(watch())
    try:
        await wait_for(
            lambda: expected <= seen or watcher.done(),
            timeout_s,
            f"{sorted(expected)} in the device list",
            state=lambda: sorted(seen),
        )
    finally:
        watcher.cancel()
    if watcher.done() and not watcher.cancelled() and watcher.exception():
        raise AssertionError("listing devices failed") from watcher.exception()
    return seen


async def dashboard_login(web: httpx.AsyncClient, name: str, password: str) -> httpx.Response:
    form = await web.get("/login")
    assert form.status_code == 200
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf, form.text
    return await web.post(
        "/login", data={"name": name, "password": password, "csrf": csrf.group(1), "next": ""}
    )


async def test_a_new_start_gets_a_new_password_and_runs_platform_and_fleet(
    tmp_path: Path,
) -> None:
    """Two starts in one folder (two tests once: a start costs seconds).

    Without a fleet (--fleet 0) the real site is listed alone. The next start's login is new,
    the previous one stops working; with its fleet, the printed login works on /api and on
    the dashboard's login page (a wrong password does not); every fleet device and the real
    site are in the device list and on the fleet page; a taken --platform-port is one line;
    Ctrl-C stops all: exit 0, the platform's and broker's ports closed."""
    old = await the_site_alone_without_a_fleet(tmp_path)
    await a_new_login_the_fleet_and_a_clean_stop(tmp_path, old)


async def the_site_alone_without_a_fleet(tmp_path: Path) -> tuple[str, str]:
    """The first start's checks; its printed login."""
    first = await start(tmp_path, "--fleet", "0")
    try:
        old = first.login
        async with httpx.AsyncClient(base_url=first.url, timeout=10) as api:
            token = await api_token(api, *old)
            assert await wait_listed(api, token, {SITE_UID}, timeout_s=30) == {SITE_UID}
    finally:
        output = await stop(first)
    assert first.process.returncode == 0, output
    assert "fleet simulator" not in output
    return old


async def a_new_login_the_fleet_and_a_clean_stop(tmp_path: Path, old: tuple[str, str]) -> None:
    demo = await start(tmp_path)
    ports: list[int] = []
    try:
        url, (name, password) = demo.url, demo.login
        assert password != old[1]
        ports = [demo.http_port, demo.port]
        expected = {SITE_UID} | {f"sim-{n:05d}" for n in range(FLEET)}
        async with httpx.AsyncClient(base_url=url, timeout=10) as api:
            refused = await api.post("/api/auth/login", json={"name": old[0], "password": old[1]})
            assert refused.status_code == 401
            wrong = await api.post("/api/auth/login", json={"name": name, "password": "x" * 16})
            assert wrong.status_code == 401
            token = await api_token(api, name, password)
            await wait_listed(api, token, expected, timeout_s=30)
        async with httpx.AsyncClient(base_url=url, timeout=10) as web:
            refused = await dashboard_login(web, name, "wrong-password-x")
            assert refused.status_code == 401
            answer = await dashboard_login(web, name, password)
            assert answer.status_code == 303, answer.text
            fleet = await web.get("/fleet")
            assert fleet.status_code == 200
            assert SITE_UID in fleet.text
            assert "sim-00000" in fleet.text
            site = await web.get(f"/devices/{SITE_UID}")
            assert site.status_code == 200
            assert SITE_UID in site.text
        await a_taken_platform_port_is_one_line(tmp_path, demo.http_port)
    finally:
        output = await stop(demo)
    assert demo.process.returncode == 0, output
    assert "demo stopped" in output
    assert "Traceback" not in output
    assert (tmp_path / "gridguard-data" / "platform.db").exists()
    assert not any(port_open(p) for p in ports), output


async def a_taken_platform_port_is_one_line(tmp_path: Path, taken: int) -> None:
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "gridguard", "demo", "--platform-port", str(taken)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"port {taken} is taken" in result.stderr


async def test_ctrl_c_while_starting_stops_cleanly(tmp_path: Path) -> None:
    """Ctrl-C once the agent is up, while the platform and the fleet are still starting: exit
    0, the stop line, no traceback."""
    process = subprocess.Popen(
        [sys.executable, "-m", "gridguard", "demo", "--fleet", "50"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    demo = Demo(process).start_reading()
    await wait_for(
        lambda: any(line.startswith("edge agent") for line in demo.lines) or demo.ready.is_set(),
        60,
        "the agent's line",
        state=lambda: demo.lines,
    )
    output = await stop(demo)
    assert process.returncode == 0, output
    assert "demo stopped" in output
    assert "Traceback" not in output
