"""Store, then acknowledge: a report is acknowledged to the broker only once its flush is
committed, and a report the broker sends again (marked as sent before) is not counted twice."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from gridguard.clock import FakeClock
from gridguard.platform.bus import Receipt
from gridguard.platform.database import Database, utc
from gridguard.platform.schema import telemetry_minutes, telemetry_samples
from gridguard.platform.telemetry_store import TelemetryWriter
from gridguard.protocol.topics import TopicScheme

pytestmark = pytest.mark.integration
T0 = datetime(2026, 6, 10, 0, 0, tzinfo=UTC)
SCHEME = TopicScheme("custom", prefix="acme/ems")


class AckRecorder:
    """Stands in for the connection a message came on: records what it acknowledges."""

    def __init__(self) -> None:
        self.acked: list[int] = []
        self.connected = True

    def ack(self, packet_ids: list[int]) -> None:
        self.acked += packet_ids


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    await database.open()
    yield database
    await database.close()


def report(second: int, grid_kw: float) -> dict[str, object]:
    meter = {"meter_id": 9, "grid_power_kw": grid_kw, "demand_kw": 0.0}
    return {"at": (T0 + timedelta(seconds=second)).isoformat(), "meters": [meter]}


async def test_acknowledged_after_the_commit_and_a_resent_report_stored_once(
    db: Database,
) -> None:
    writer = TelemetryWriter(db, FakeClock(T0))
    link = AckRecorder()
    for n in range(3):
        receipt = Receipt(link, packet_id=n + 1).defer()  # type: ignore[arg-type]
        writer.add("gg-a1", SCHEME, {"last_status": report(n, 10.0)}, receipt=receipt)
    assert link.acked == []  # buffered is not stored
    await writer.flush()
    assert link.acked == [1, 2, 3]
    # the instance that stored 1 and 2 died before acknowledging: they come again (dup),
    # with one report nobody stored yet, sent again twice in the same batch
    for packet_id, n in [(11, 0), (12, 1), (13, 7), (14, 7)]:
        receipt = Receipt(link, packet_id=packet_id, dup=True).defer()  # type: ignore[arg-type]
        writer.add("gg-a1", SCHEME, {"last_status": report(n, 10.0)}, receipt=receipt)
    await writer.flush()
    assert link.acked == [1, 2, 3, 11, 12, 13, 14]
    t = telemetry_samples.c
    async with db.read() as conn:
        seconds = sorted(
            (r.at.replace(tzinfo=UTC) - T0).seconds
            for r in await conn.execute(sa.select(t.at).where(t.device_uid == "gg-a1"))
        )
        count = await conn.scalar(
            sa.select(telemetry_minutes.c.grid_count).where(
                telemetry_minutes.c.device_uid == "gg-a1"
            )
        )
    assert seconds == [0, 1, 2, 7]
    assert count == 4  # the minute's rollup counts each report once


async def test_a_fresh_report_and_its_resent_copy_in_one_batch_are_stored_once(
    db: Database,
) -> None:
    """A reconnect while the first copy waits for its flush: the copy comes back DUP into the
    same batch."""
    writer = TelemetryWriter(db, FakeClock(T0))
    link = AckRecorder()
    for packet_id, dup in [(1, False), (2, True)]:
        receipt = Receipt(link, packet_id=packet_id, dup=dup).defer()  # type: ignore[arg-type]
        writer.add("gg-a2", SCHEME, {"last_status": report(5, 10.0)}, receipt=receipt)
    await writer.flush()
    async with db.read() as conn:
        stored = await conn.scalar(sa.select(sa.func.count()).select_from(telemetry_samples))
    assert (stored, link.acked) == (1, [1, 2])


async def test_a_database_outage_keeps_the_batch_unacknowledged_until_it_is_stored(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = TelemetryWriter(db, FakeClock(T0))
    link = AckRecorder()
    real = db.run_write
    refusals = [sa.exc.OperationalError("INSERT", {}, OSError("connection refused"))] * 3

    async def away(work: Any) -> Any:
        if refusals:
            raise refusals.pop()
        return await real(work)

    monkeypatch.setattr(db, "run_write", away)
    receipt = Receipt(link, packet_id=1).defer()  # type: ignore[arg-type]
    writer.add("gg-a3", SCHEME, {"last_status": report(1, 10.0)}, receipt=receipt)
    await writer.flush()  # three refusals: kept, nothing acknowledged
    assert (link.acked, writer.failing) == ([], True)
    receipt = Receipt(link, packet_id=2).defer()  # type: ignore[arg-type]
    writer.add("gg-a3", SCHEME, {"last_status": report(2, 10.0)}, receipt=receipt)
    await writer.flush()  # back: both stored, both acknowledged
    assert (link.acked, writer.failing) == ([1, 2], False)
    async with db.read() as conn:
        stored = await conn.scalar(sa.select(sa.func.count()).select_from(telemetry_samples))
    assert stored == 2


async def test_a_report_no_database_can_take_does_not_end_the_writer(db: Database) -> None:
    """A time past what UTC can hold is taken as the time received; an offset is stored as
    the same instant in UTC."""
    writer = TelemetryWriter(db, FakeClock(T0))
    link = AckRecorder()
    meter = {"meter_id": 9, "grid_power_kw": 1.0}
    for packet_id, at in [(1, "9999-12-31T23:59:59-01:00"), (2, "2026-06-10T08:00:07+08:00")]:
        receipt = Receipt(link, packet_id=packet_id).defer()  # type: ignore[arg-type]
        writer.add("gg-a4", SCHEME, {"last_status": {"at": at, "meters": [meter]}}, receipt=receipt)
    await writer.flush()
    assert link.acked == [1, 2]
    t = telemetry_samples.c
    async with db.read() as conn:
        ats = sorted(utc(r.at) for r in await conn.execute(sa.select(t.at)))
    assert ats == [T0, T0 + timedelta(seconds=7)]
