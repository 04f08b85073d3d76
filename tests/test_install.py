"""The package as a user installs it: a wheel in a fresh venv outside the checkout.

* the core alone (``pip install gridguard``) runs ``gridguard edge run`` against Mosquitto and
  answers a create, without the demo's, the lab's or PostgreSQL's libraries;
* with ``[lab]``, ``gridguard bench control`` finds and runs its shipped scenarios;
* with ``[demo,sim]``, two ``gridguard demo`` at once come up on ports of their own, each
  answers the create its own printed ``mosquitto_pub`` sends, and neither drives the other's
  simulator.

Slow (a wheel build, three venvs and two demos: about a minute and a half on a 2-core box).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import pytest

from gridguard.client import StrategyClient
from gridguard.ports import free_port, port_open
from gridguard.protocol.topics import TopicScheme
from gridguard.testing.demo import Demo
from gridguard.testing.examples import CREATE_DATA

ROOT = Path(__file__).parents[1]
IN_CI = os.environ.get("CI") == "true"
BASELINE_KW = 10

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _run(*args: str | Path, cwd: Path | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of this checkout."""
    out = tmp_path_factory.mktemp("dist")
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", out, ROOT)
    return next(out.glob("gridguard-*.whl"))


def fresh_venv(folder: Path, need: str) -> Path:
    """A new venv in ``folder`` with the requirement ``need`` installed; its ``bin`` folder.

    Installed by this interpreter's pip (``pip --python``) into a venv made without one, and
    without compiling bytecode: the same resolution, files and entry points as a ``pip install``
    inside the venv, minus the ensurepip and compileall passes that were most of the time
    (29 s of 35 s for ``[lab]`` on the 2-core box; now 5 s)."""
    _run(sys.executable, "-m", "venv", "--without-pip", folder)
    python = folder / "bin" / "python"
    _run(sys.executable, "-m", "pip", "--python", python, "install", "--no-compile", "-q", need)
    return folder / "bin"


@pytest.fixture(scope="module")
def outside(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A working folder outside the checkout (nothing of it on the path)."""
    folder = tmp_path_factory.mktemp("user")
    assert ROOT not in folder.parents
    return folder


def core_site(folder: Path, uid: str, prefix: str) -> Path:
    """A one-meter site whose meter nobody serves (it stays offline: fail-safe, no writes)."""
    config = folder / f"{uid}.toml"
    lines = [
        f'[device]\nuid = "{uid}"',
        f'[mqtt]\nurl = "mqtt://127.0.0.1:1883"\nprefix = "{prefix}"\nstatus_enabled = false',
        '[store]\nurl = "sqlite:///data/edge.db"',
        f'[[meters]]\nid = 9\nmodbus = {{ host = "127.0.0.1", port = {free_port()} }}',
    ]
    config.write_text("\n\n".join(lines) + "\n", encoding="utf-8")
    return config


async def test_core_alone_runs_the_edge_agent(wheel: Path, outside: Path) -> None:
    """`pip install gridguard` (no extras): --help works, the demo's, lab's and PostgreSQL's
    libraries are absent, and `edge run` answers a create with 200 over Mosquitto."""
    if not port_open(1883):
        (pytest.fail if IN_CI else pytest.skip)("no Mosquitto on 127.0.0.1:1883")
    bin_dir = fresh_venv(outside / "core-venv", str(wheel))
    assert "edge" in _run(bin_dir / "gridguard", "--help", cwd=outside)
    for absent in ("amqtt", "numpy", "scipy", "matplotlib", "asyncpg"):
        probe = subprocess.run(
            [bin_dir / "python", "-c", f"import {absent}"], capture_output=True, check=False
        )
        assert probe.returncode != 0, f"{absent} is installed with the core"
    uid, prefix = f"gg-core-{uuid.uuid4().hex[:8]}", "v1/test-install"
    config = core_site(outside, uid, prefix)
    log = outside / "core-agent.log"
    with log.open("w") as log_file:
        agent = subprocess.Popen(
            [bin_dir / "gridguard", "edge", "run", "--config", config, "--log-level", "warning"],
            cwd=outside / "core-venv",  # not the config's folder: the store follows the file
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        scheme = TopicScheme("custom", prefix=prefix)
        async with StrategyClient("mqtt://127.0.0.1:1883", scheme, uid) as ems:
            async with asyncio.timeout(60):
                await anext(ems.lists())  # the agent is up: its retained list/post
            result = await ems.create(CREATE_DATA)
        assert (result.code, result.msg) == (200, ""), result
    finally:
        agent.send_signal(signal.SIGINT)
        await asyncio.to_thread(agent.wait, timeout=30)
    assert agent.returncode == 0, log.read_text()
    assert (outside / "data" / "edge.db").exists()


def start_demo(bin_dir: Path, folder: Path) -> Demo:
    folder.mkdir()
    process = subprocess.Popen(
        [bin_dir / "gridguard", "demo"],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return Demo(process).start_reading()


async def meter_9(port: int, timeout_s: float = 30) -> AsyncIterator[dict[str, object]]:
    """Meter 9 of every status report on the demo's broker (an async generator)."""
    topic = "v1/gridguard/gg-demo-001/streaming_overdemand/status/post"
    async with (
        asyncio.timeout(timeout_s),
        aiomqtt.Client("127.0.0.1", port, identifier=f"t-{uuid.uuid4().hex[:8]}") as client,
    ):
        await client.subscribe(topic)
        async for message in client.messages:
            if message.topic.value == topic and isinstance(message.payload, bytes):
                status = json.loads(message.payload)
                yield next(m for m in status["meters"] if m["meter_id"] == 9)


async def held_at_baseline(port: int) -> bool:
    async for meter in meter_9(port):
        if meter["floor_kw"] is not None and float(str(meter["grid_power_kw"])) >= BASELINE_KW:
            return True
    return False


async def create_by_printed_command(demo: Demo) -> dict[str, object]:
    """Paste the demo's mosquitto_pub line into a shell; the create/result it gets."""
    topic = "v1/gridguard/gg-demo-001/streaming_overdemand/create/result"
    async with (
        asyncio.timeout(30),
        aiomqtt.Client("127.0.0.1", demo.port, identifier=f"t-{uuid.uuid4().hex[:8]}") as client,
    ):
        await client.subscribe(topic, qos=1)
        pub = await asyncio.create_subprocess_shell(demo.command("mosquitto_pub"))
        assert await pub.wait() == 0
        async for message in client.messages:
            if message.topic.value == topic and isinstance(message.payload, bytes):
                result: dict[str, object] = json.loads(message.payload)
                return result
    raise AssertionError("no create/result")


async def test_two_demos_from_the_wheel_at_once(wheel: Path, outside: Path) -> None:
    """Two demos run side by side on their own ports; a create pasted from one's output
    drives that demo's site only."""
    if shutil.which("mosquitto_pub") is None:
        (pytest.fail if IN_CI else pytest.skip)("mosquitto_pub is not installed")
    bin_dir = fresh_venv(outside / "demo-venv", f"{wheel}[demo,sim]")
    demos = [start_demo(bin_dir, outside / name) for name in ("one", "two")]
    try:
        for demo in demos:
            assert await asyncio.to_thread(demo.ready.wait, 60), demo.lines
        one, two = demos
        assert one.port != two.port
        assert len(one.modbus_ports) == len(two.modbus_ports) == 7
        assert not one.modbus_ports & two.modbus_ports
        assert f"-p {one.port}" in one.command("mosquitto_sub")
        first = await create_by_printed_command(one)
        assert (first["code"], first["data"]) == (200, {"id": 1}), first
        assert await held_at_baseline(one.port)
        async for meter in meter_9(two.port):  # untouched: the uncontrolled site exports
            assert meter["floor_kw"] is None  # no strategy reached demo two
            if float(str(meter["grid_power_kw"])) < 0:  # (once its PV has ramped up)
                break
        second = await create_by_printed_command(two)
        assert second["code"] == 200, second
    finally:
        for demo in demos:
            demo.process.send_signal(signal.SIGINT)
        for demo in demos:
            await asyncio.to_thread(demo.process.wait, timeout=30)
    for demo in demos:
        assert demo.process.returncode == 0, demo.lines
        assert any("demo stopped" in line for line in demo.lines), demo.lines


NOON_HOUR = slice(11 * 360, 12 * 360)
"""Trace rows (10 s each) of 11:00-12:00 on the shipped unbalanced day: phase A exports."""


def noon_hour_of(toml: Path, folder: Path) -> Path:
    """The shipped scenario ``toml`` over one hour of its own trace, under the same name (the
    bench names its table after the file): benching the whole day took a minute and proved no
    more about the wheel; the whole trace is loaded from the install separately."""
    folder.mkdir()
    lines = toml.with_suffix(".csv").read_text(encoding="utf-8").splitlines(keepends=True)
    (folder / f"{toml.stem}.csv").write_text(
        lines[0] + "".join(lines[1:][NOON_HOUR]), encoding="utf-8"
    )
    text = toml.read_text(encoding="utf-8")
    assert 'start = "2024-06-19T00:00:00+08:00"' in text, "the shipped day moved: update this"
    short = folder / toml.name
    short.write_text(text.replace("T00:00:00", "T11:00:00", 1), encoding="utf-8")
    return short


def test_bench_control_from_the_wheel_finds_its_scenarios(wheel: Path, outside: Path) -> None:
    """``gridguard[lab]`` outside the checkout: the shipped scenarios are found, load whole from
    the install, and ``gridguard bench control`` benches one (an hour of it)."""
    bin_dir = fresh_venv(outside / "venv-lab", f"{wheel}[lab]")
    listed = _run(
        bin_dir / "python",
        "-c",
        "from gridguard.lab.bench import scenario_paths\n"
        "print('\\n'.join(str(p) for p in scenario_paths(None)))",
        cwd=outside,
    ).split()
    shipped = {"factory_day", "month_peak_covered", "month_peak_uncovered", "unbalanced_day"}
    assert shipped <= {Path(p).stem for p in listed}
    assert all(Path(p).is_file() and ROOT not in Path(p).parents for p in listed)
    day = next(Path(p) for p in listed if Path(p).stem == "unbalanced_day")
    whole_s = _run(
        bin_dir / "python",
        "-c",
        "import pathlib, sys\nfrom gridguard.plant.scenario import load_scenario\n"
        "print(load_scenario(pathlib.Path(sys.argv[1])).duration_s)",
        day,
        cwd=outside,
    )
    assert int(whole_s) == 86_400
    table = json.loads(
        _run(
            bin_dir / "gridguard",
            *("bench", "control", "--variant", "scenario", "--json"),
            *("--scenario", noon_hour_of(day, outside / "noon")),
            cwd=outside,
        )
    )
    assert set(table) == {"unbalanced_day"}
    assert set(table["unbalanced_day"]["scenario"]) == {"gridguard", "baseline"}
