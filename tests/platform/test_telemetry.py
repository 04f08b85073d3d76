"""Telemetry: batched writes, minute rollups, monthly demand, and the endpoints over MQTT."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import aiomqtt
import pytest
import sqlalchemy as sa

from gridguard.clock import FakeClock
from gridguard.platform.database import Database, JsonText, utc
from gridguard.platform.schema import devices, telemetry_minutes, telemetry_samples
from gridguard.platform.telemetry_store import CONTEXT_TTL_S, TelemetryWriter, month_peaks
from gridguard.protocol.topics import TopicScheme, build_topic
from tests.platform.conftest import Platform, eventually

pytestmark = pytest.mark.integration
T0 = datetime(2026, 6, 10, 0, 0, tzinfo=UTC)
SCHEME = TopicScheme("custom", prefix="acme/ems")


def status(minute: int, second: int, grid_kw: float) -> dict[str, object]:
    at = T0 + timedelta(minutes=minute, seconds=second)
    meter = {"meter_id": 9, "grid_power_kw": grid_kw, "demand_kw": 0.0, "failsafe": False}
    return {"at": at.isoformat(), "cycle": minute, "failsafe": False, "meters": [meter]}


def rising_reports() -> list[dict[str, object]]:
    """16 minutes, 4 reports each, minute m averaging 100 + 10 m kW."""
    return [
        status(m, s, 100.0 + 10 * m + d)
        for m in range(16)
        for s, d in [(0, -3.0), (15, 3.0), (30, -1.0), (45, 1.0)]
    ]


async def test_one_flush_writes_a_whole_batch(db_url: str) -> None:
    """64 reports in one flush: one transaction, every sample, 16 minutes, the month's peak."""
    db = Database(db_url)
    await db.open()
    try:
        writer = TelemetryWriter(db, FakeClock(T0))
        for report in rising_reports():
            writer.add("gg-t1", SCHEME, {"last_status": report})
        await writer.flush()
        assert writer.flushes == 1
        async with db.read() as conn:
            assert (
                await conn.scalar(sa.select(sa.func.count()).select_from(telemetry_samples)) == 64
            )
            assert (
                await conn.scalar(sa.select(sa.func.count()).select_from(telemetry_minutes)) == 16
            )
        (peak,) = await month_peaks(db, uid="gg-t1", month="2026-06")
        assert peak.peak_kw == pytest.approx(180.0)
        for report in [status(16, 0, 500.0)]:  # the next window: mean of 120..250 and 500
            writer.add("gg-t1", SCHEME, {"last_status": report})
        await writer.flush()
        (peak,) = await month_peaks(db, uid="gg-t1", month="2026-06")
        assert peak.peak_kw == pytest.approx((sum(120 + 10 * i for i in range(14)) + 500) / 15)
    finally:
        await db.close()


async def test_a_status_is_stored_as_the_text_it_came_in(db_url: str) -> None:
    """A JsonText status: the device row holds its very text (not re-encoded), reads back as
    the document, and its samples are taken from the document; the first registration's
    created_at stays when the row is upserted again."""
    db = Database(db_url)
    await db.open()
    try:
        clock = FakeClock(T0)
        writer = TelemetryWriter(db, clock)
        report = status(0, 0, 10.0)
        text = json.dumps(report, indent=1, ensure_ascii=False)
        writer.add("gg-j", SCHEME, {"last_status": JsonText(report, text)})
        await writer.flush()
        clock.advance(60)
        writer.add("gg-j", SCHEME, {"last_status": JsonText(report, text)})
        await writer.flush()
        async with db.read() as conn:
            raw = await conn.scalar(
                sa.text("SELECT CAST(last_status AS TEXT) FROM devices WHERE uid = 'gg-j'")
            )
            row = (await conn.execute(sa.select(*devices.c))).one()
            samples = await conn.scalar(sa.select(sa.func.count()).select_from(telemetry_samples))
        assert raw == text
        assert row.last_status == report
        assert utc(row.created_at) == T0
        assert utc(row.last_seen_at) == T0 + timedelta(seconds=60)
        assert samples == 2
    finally:
        await db.close()


async def test_endpoints_over_mqtt(platform: Platform, prefix: str) -> None:
    """status/post and list/post from a device -> telemetry by step, demand against its limit."""
    uid, scheme = "gg-tele", TopicScheme("custom", prefix=prefix)
    limit = {
        "id": 1,
        "ele_meter_id": 9,
        "streaming_status": 2,
        "over_demand_status": 1,
        "over_demand_condition": [150] * 12,
        "dynamic_demand_percentage": 90,
        "created_at": "2026-06-01T00:00:00Z",
        "updated_at": "2026-06-01T00:00:00Z",
    }
    list_post = {
        "mid": "6f7c1f4e-2c6b-4a8e-9d6e-3b1d2f0a9c11",
        "type": "streaming_overdemand_list",
        "device_uid": uid,
        "timestamp": 1,
        "data": [limit],
    }
    async with aiomqtt.Client("127.0.0.1", 1883) as device:
        await device.publish(build_topic(scheme, uid, "list", "post"), json.dumps(list_post), qos=1)

        async def listed() -> bool:
            response = await platform.admin.get(f"/api/devices/{uid}")
            return response.status_code == 200 and response.json()["strategy_count"] == 1

        await eventually(listed, what="the list/post")
        for report in rising_reports():
            await device.publish(
                build_topic(scheme, uid, "status", "post"), json.dumps(report), qos=1
            )
    params: dict[str, str | int] = {
        "meter": 9,
        "from": T0.isoformat(),
        "to": (T0 + timedelta(hours=1)).isoformat(),
    }

    async def all_minutes() -> dict[str, Any] | None:
        body = (await platform.admin.get(f"/api/devices/{uid}/telemetry", params=params)).json()
        return body if len(body["points"]) == 16 and body["points"][-1]["samples"] == 4 else None

    series = await eventually(all_minutes, what="16 minutes of telemetry")
    assert series["points"][0]["grid_avg_kw"] == pytest.approx(100.0)
    quarter = await platform.admin.get(
        f"/api/devices/{uid}/telemetry", params={**params, "step": 900}
    )
    assert [p["samples"] for p in quarter.json()["points"]] == [60, 4]
    demand = (await platform.admin.get(f"/api/devices/{uid}/demand")).json()
    assert [(d["month"], d["peak_kw"], d["limit_kw"], d["over_limit"]) for d in demand] == [
        ("2026-06", pytest.approx(180.0), 150.0, True)
    ]
    bad = await platform.admin.get(f"/api/devices/{uid}/telemetry", params={**params, "step": 90})
    assert (bad.status_code, bad.json()["detail"]) == (
        422,
        "step: must be a multiple of 60 s, got 90",
    )


async def test_one_flush_registers_and_updates_many_devices(db_url: str) -> None:
    """A known and a new device in one batch: both rows written, each with its own values."""
    db = Database(db_url)
    await db.open()
    try:
        writer = TelemetryWriter(db, FakeClock(T0))
        writer.add("gg-a", SCHEME, {"last_status": status(0, 0, 10.0)})
        await writer.flush()
        writer.add("gg-a", SCHEME, {"last_status": status(0, 15, 20.0)})
        writer.add("gg-b", SCHEME, {"last_list": [], "last_list_at": T0})
        writer.add("gg-c", SCHEME, {})  # a result: only seen
        await writer.flush()
        async with db.read() as conn:
            rows = {
                r.uid: r for r in await conn.execute(sa.select(*devices.c).order_by(devices.c.uid))
            }
        assert sorted(rows) == ["gg-a", "gg-b", "gg-c"]
        assert rows["gg-a"].last_status["meters"][0]["grid_power_kw"] == 20.0
        assert (rows["gg-b"].last_list, rows["gg-b"].last_status) == ([], None)
        assert all(r.last_seen_at is not None and r.prefix == "acme/ems" for r in rows.values())
    finally:
        await db.close()


async def test_a_lower_demand_keeps_the_peak_and_a_new_limit_is_written(db_url: str) -> None:
    db = Database(db_url)
    await db.open()
    try:
        clock = FakeClock(T0)
        writer = TelemetryWriter(db, clock)
        for report in rising_reports():
            writer.add("gg-t2", SCHEME, {"last_status": report})
        await writer.flush()
        writer.add("gg-t2", SCHEME, {"last_status": status(16, 0, 0.0)})  # window mean drops
        await writer.flush()
        (peak,) = await month_peaks(db, uid="gg-t2", month="2026-06")
        assert (peak.peak_kw, peak.limit_kw) == (pytest.approx(180.0), None)
        limit = {"ele_meter_id": 9, "over_demand_status": 1, "over_demand_condition": [150] * 12}
        writer.add("gg-t2", SCHEME, {"last_list": [limit]})
        await writer.flush()
        clock.advance(CONTEXT_TTL_S + 1)  # the writer re-reads the device's limits
        writer.add("gg-t2", SCHEME, {"last_status": status(17, 0, 0.0)})
        await writer.flush()
        (peak,) = await month_peaks(db, uid="gg-t2", month="2026-06")
        assert (peak.peak_kw, peak.limit_kw) == (pytest.approx(180.0), 150.0)
    finally:
        await db.close()
