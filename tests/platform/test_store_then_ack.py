"""Store, then acknowledge: a report is acknowledged to the broker only once its flush is
committed, and a report the broker sends again (marked as sent before) is not counted twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from gridguard.clock import FakeClock
from gridguard.platform.bus import Receipt
from gridguard.platform.database import Database
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


def report(second: int, grid_kw: float) -> dict[str, object]:
    meter = {"meter_id": 9, "grid_power_kw": grid_kw, "demand_kw": 0.0}
    return {"at": (T0 + timedelta(seconds=second)).isoformat(), "meters": [meter]}


async def test_acknowledged_after_the_commit_and_a_resent_report_stored_once(
    db_url: str,
) -> None:
    db = Database(db_url)
    await db.open()
    try:
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
    finally:
        await db.close()
