"""One of two platform instances killed with SIGKILL mid-stream: no status report is lost.

The doomed instance runs as a real process (``gridguard platform run``) beside one in this
process, on one PostgreSQL database and the shared Mosquitto; a device stream of QoS 1 reports,
each with its own ``at``, goes on through the kill. With store-then-acknowledge sessions (the
default) every report is stored exactly once: what the dead instance had received but not
stored stays in its session and the survivor takes it over. The same run with clean sessions
(``--session-expiry-s 0``) loses reports: the test can tell the two apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from gridguard.mqtt.lite import LiteClient, Publication
from gridguard.platform.database import Database
from gridguard.platform.schema import telemetry_samples
from gridguard.ports import free_port
from gridguard.protocol.topics import TopicScheme, build_topic
from gridguard.testing.wait import wait_for
from tests.platform.conftest import PlatformFactory, eventually

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

DEVICES = 20
RATE_PER_S = 600
STREAM_S = 3.0


class Doomed:
    """``gridguard platform run`` as a child process, its log lines collected."""

    def __init__(self, db_url: str, prefix: str, session_expiry_s: int) -> None:
        args = [sys.executable, "-m", "gridguard", "platform", "run", "--db", db_url]
        args += ["--mqtt-url", "mqtt://127.0.0.1:1883", "--prefix", prefix]
        args += ["--listen", f"127.0.0.1:{free_port()}", "--log-level", "info"]
        args += ["--client-id", f"doomed-{uuid.uuid4().hex[:8]}"]
        args += ["--session-expiry-s", str(session_expiry_s)]
        self.process = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)

    def logged(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)


async def _stream(prefix: str, doomed: Doomed) -> int:
    """QoS 1 reports at ``RATE_PER_S`` for ``STREAM_S``, the doomed instance killed halfway;
    returns how many were published (each acknowledged by the broker)."""
    scheme = TopicScheme("custom", prefix=prefix)
    device = LiteClient(f"ggp-dev-{uuid.uuid4().hex[:8]}", lambda *_: None)
    await device.connect("127.0.0.1", 1883)
    t0, sent, tick_s = datetime.now(UTC), 0, 0.05  # recent: retention keeps it
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        while (elapsed := loop.time() - started) < STREAM_S:
            due = int(elapsed * RATE_PER_S) - sent
            batch = []
            for n in range(sent, sent + due):
                meter = {"meter_id": 1, "grid_power_kw": float(n % 97), "demand_kw": 0.0}
                doc = {"at": (t0 + timedelta(milliseconds=n)).isoformat(), "meters": [meter]}
                topic = build_topic(scheme, f"ggp-d{n % DEVICES:02d}", "status", "post")
                batch.append(Publication(topic, json.dumps(doc).encode(), qos=1))
            device.publish_many(batch)
            sent += due
            if doomed.process.poll() is None and elapsed >= STREAM_S / 2:
                doomed.kill()
            await asyncio.sleep(tick_s)
        await wait_for(lambda: device.unacked == 0, 10.0, "the broker's PUBACKs")
    finally:
        device.close()
    return sent


async def _stored(db: Database) -> tuple[int, int]:
    """(samples, distinct (device, meter, at)) in the database."""
    t = telemetry_samples.c
    async with db.read() as conn:
        total = await conn.scalar(sa.select(sa.func.count()).select_from(telemetry_samples))
        keys = sa.select(t.device_uid, t.meter_id, t.at).distinct().subquery()
        distinct = await conn.scalar(sa.select(sa.func.count()).select_from(keys))
    return int(total or 0), int(distinct or 0)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # two instances, one database
@pytest.mark.parametrize("session_expiry_s", [300, 0], ids=["store-then-ack", "clean-session"])
async def test_a_killed_instance_loses_no_status_report(
    platform_factory: PlatformFactory, prefix: str, db_url: str, session_expiry_s: int
) -> None:
    survivor = await platform_factory(session_expiry_s=session_expiry_s)
    doomed = Doomed(db_url, prefix, session_expiry_s)
    try:
        await wait_for(lambda: doomed.logged("MQTT connected"), 60.0, "the doomed instance")
        sent = await _stream(prefix, doomed)
    finally:
        doomed.kill()
    db = Database(db_url)
    await db.open()
    try:
        if session_expiry_s:

            async def all_stored() -> bool:
                return (await _stored(db))[1] >= sent

            await eventually(all_stored, timeout_s=30, what=f"all {sent} reports stored")
            total, distinct = await _stored(db)
            assert (total, distinct) == (sent, sent), "a report lost or stored twice"
        else:  # clean sessions: once the survivor has stopped (stored all it got), count
            await survivor.stop()
            total, distinct = await _stored(db)
            assert total == distinct
            assert 0 < distinct < sent, "clean sessions lost nothing: the kill hit no report"
    finally:
        await db.close()
