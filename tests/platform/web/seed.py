"""A fleet written straight into the platform's database (no MQTT): thousands of devices with a
status, strategies, drift, open alarms and demand peaks, and one featured site with a month of
minute rollups and a year of peaks (the demand page and the screenshots)."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from gridguard.platform import telemetry as law
from gridguard.platform.database import Database
from gridguard.platform.schema import (
    alarms,
    demand_peaks,
    devices,
    telemetry_minutes,
    telemetry_samples,
)
from gridguard.protocol.timefmt import format_datetime
from gridguard.strategy.model import Strategy

FEATURED = "gg-fleet-00000"
ZONE = "Asia/Shanghai"
CITIES = ("Suzhou", "Wuxi", "Changzhou", "Ningbo", "Hangzhou", "Foshan", "Dongguan", "Xiamen")


def strategy(now: datetime, *, baseline_kw: int, limit_kw: int) -> dict[str, Any]:
    wire = format_datetime(now)
    return {
        "id": 1,
        "device_type": 2,
        "devices": [],
        "ele_meter_id": 9,
        "streaming_status": 1,
        "streaming_condition": baseline_kw,
        "individual_phase_streaming_status": 2,
        "individual_phase_streaming_condition": 0,
        "over_demand_status": 1,
        "over_demand_condition": [limit_kw] * 12,
        "current_over_demand_condition": limit_kw,
        "dynamic_demand_status": 2,
        "dynamic_demand": 0,
        "dynamic_demand_percentage": 90,
        "updated_by": "seed",
        "created_at": wire,
        "updated_at": wire,
    }


def desired(document: dict[str, Any]) -> dict[str, Any]:
    """The stored form of an applied strategy (the EMS's own fields only)."""
    names = Strategy.__dataclass_fields__
    return {k: v for k, v in document.items() if k in names}


def status(now: datetime, grid_kw: float, demand_kw: float) -> dict[str, Any]:
    phases = [round(grid_kw * share, 1) for share in (0.36, 0.33, 0.31)]
    return {
        "type": "streaming_overdemand_status",
        "timestamp": int(now.timestamp() * 1000),
        "at": now.isoformat(),
        "cycle": 1,
        "failsafe": False,
        "meters": [
            {
                "meter_id": 9,
                "grid_power_kw": grid_kw,
                "phase_power_kw": phases,
                "demand_kw": demand_kw,
                "dynamic_demand_kw": 0,
                "target_kw": 720.0,
                "shave_kw": None,
                "floor_kw": 12.0,
                "ceiling_kw": None,
                "failsafe": False,
            }
        ],
        "devices": [
            {
                "kind": "storage",
                "id": 3,
                "meter_id": 9,
                "online": True,
                "power_kw": 40.0,
                "setpoint_kw": 40.0,
                "soc_pct": 63.5,
            },
            {
                "kind": "pv",
                "id": 5,
                "meter_id": 9,
                "online": True,
                "power_kw": 210.0,
                "setpoint_kw": 400.0,
                "soc_pct": None,
            },
        ],
    }


def _device(i: int, now: datetime, rng: random.Random) -> dict[str, Any]:
    online = rng.random() < 0.93
    seen = now - timedelta(seconds=rng.uniform(1, 200) if online else rng.uniform(4000, 90000))
    grid = round(rng.uniform(10, 600), 1)
    limit = rng.choice((500, 650, 800, 1000))
    listed = [strategy(now, baseline_kw=10, limit_kw=limit)]
    drifting = i % 97 == 5
    wanted = [desired(strategy(now, baseline_kw=20 if drifting else 10, limit_kw=limit))]
    return {
        "uid": f"gg-fleet-{i:05d}",
        "scheme": "custom",
        "prefix": "seed/ems",
        "display_name": f"{CITIES[i % len(CITIES)]} plant {i}",
        "site_name": f"Park {i // 50}",
        "time_zone": ZONE,
        "report_interval_s": 300.0,
        "created_at": now - timedelta(days=30),
        "last_seen_at": seen,
        "last_status": status(seen, grid, grid * 0.9),
        "last_status_at": seen,
        "last_list": listed,
        "last_list_at": seen,
        "desired": wanted,
        "desired_at": seen,
        "desired_by": "seed",
    }


async def seed_fleet(db: Database, *, count: int, now: datetime, seed: int = 7) -> None:
    rng = random.Random(seed)
    rows = [_device(i, now, rng) for i in range(count)]
    month = law.month_key(now, ZONE)
    peaks = [
        {
            "device_uid": r["uid"],
            "meter_id": 9,
            "month": month,
            "peak_kw": round(rng.uniform(200, 900), 1),
            "peak_at": now - timedelta(days=2),
            "limit_kw": float(r["last_list"][0]["over_demand_condition"][0]),
        }
        for r in rows
        if r["uid"] != FEATURED
    ]
    open_alarms = [
        {
            "kind": "backflow",
            "device_uid": f"gg-fleet-{i:05d}",
            "subject": "meter 9",
            "severity": "warning",
            "message": "meter 9: grid import -12.0 kW below the baseline 10 kW",
            "started_at": now - timedelta(minutes=5),
        }
        for i in range(17, count, max(1, count // 25))
    ]
    async with db.write() as conn:
        await conn.execute(sa.insert(devices), rows)
        await conn.execute(sa.insert(demand_peaks), peaks)
        if open_alarms:
            await conn.execute(sa.insert(alarms), open_alarms)
    await seed_featured(db, now=now, rng=rng)


def _load_kw(moment: datetime) -> float:
    hour = (moment.hour + 8 + moment.minute / 60) % 24  # local time in Asia/Shanghai
    work = max(0.0, math.sin(math.pi * (hour - 6) / 14)) if 6 < hour < 20 else 0.0
    return 120 + 560 * work


async def seed_featured(db: Database, *, now: datetime, rng: random.Random) -> None:
    """A month of minute rollups, a year of monthly peaks, ten minutes of samples."""
    end = law.minute_of(now)
    minutes = []
    for i in range(30 * 24 * 60):
        at = end - timedelta(minutes=i)
        mean = _load_kw(at) + rng.uniform(-25, 25)
        minutes.append(
            {
                "device_uid": FEATURED,
                "meter_id": 9,
                "minute": at,
                "grid_sum_kw": mean * 4,
                "grid_count": 4,
                "grid_min_kw": mean - 15,
                "grid_max_kw": mean + 15,
            }
        )
    year, number = now.year, now.month
    peaks = []
    for back in range(12):
        y, m = (year, number - back) if number - back > 0 else (year - 1, number - back + 12)
        peak = 640 + 90 * math.sin(back) + rng.uniform(-20, 20)
        peaks.append(
            {
                "device_uid": FEATURED,
                "meter_id": 9,
                "month": f"{y:04d}-{m:02d}",
                "peak_kw": round(peak, 1),
                "peak_at": datetime(y, m, 12, 6, 45, tzinfo=UTC),
                "limit_kw": 720.0,
            }
        )
    samples = [
        {
            "device_uid": FEATURED,
            "meter_id": 9,
            "at": now - timedelta(seconds=5 * i),
            "grid_power_kw": _load_kw(now) + rng.uniform(-10, 10),
            "demand_kw": 600.0,
            "failsafe": False,
        }
        for i in range(120)
    ]
    featured = {
        "display_name": "Suzhou plant 0 (featured)",
        "last_status": status(now, 12.4, 612.0),
        "last_status_at": now,
        "last_seen_at": now,
        "last_list": [strategy(now, baseline_kw=12, limit_kw=720)],
        "desired": [desired(strategy(now, baseline_kw=12, limit_kw=720))],
    }
    async with db.write() as conn:
        await conn.execute(sa.insert(telemetry_minutes), minutes)
        await conn.execute(sa.insert(demand_peaks), peaks)
        await conn.execute(sa.insert(telemetry_samples), samples)
        await conn.execute(sa.update(devices).where(devices.c.uid == FEATURED).values(**featured))
