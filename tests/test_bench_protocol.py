"""bench/protocol.py: the reply matching of its measuring client, and one tiny end-to-end run
(its own Mosquitto, the echo and a real agent), so the bench cannot rot unnoticed."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "protocol.py"


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_protocol", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.unit
@pytest.mark.parametrize(
    ("payload", "mid"),
    [
        # an agent's result answers the mid in "reply", not its own "mid"
        (b'{"mid":"r-1","type":"streaming_overdemand_update","reply":"c-9","code":200}', b"c-9"),
        # the echo hands the request back: its own mid
        (b'{"mid":"c-9","type":"streaming_overdemand_update","data":{"id":1}}', b"c-9"),
        (b"not json at all", b""),
    ],
)
def test_mid_answered(payload: bytes, mid: bytes) -> None:
    assert load_bench().mid_answered(payload) == mid


@pytest.mark.slow
def test_a_tiny_run_prints_the_table_and_draws_the_chart(tmp_path: Path) -> None:
    chart = tmp_path / "latency.png"
    small = ("--latency-n", "30", "--closed-n", "30", "--flood-n", "50", "--rounds", "1")
    unsettled = ("--settle-s", "0")  # its five 1 s pauses keep phases apart: not needed here
    done = subprocess.run(
        [sys.executable, str(BENCH), *small, *unsettled, "--chart", str(chart)],
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    for row in ("raw MQTT echo", "edge agent, update", "through the Python SDK", "commit alone"):
        assert row in done.stdout
    assert "p99 ratio agent/echo:" in done.stdout
    assert "agent sustained:" in done.stdout
    assert chart.stat().st_size > 10_000
