"""The demo's platform and fleet: the platform on the demo broker, the demo login, fleet progress.

The platform has no default password (``gridguard platform user add`` makes the first admin).
The demo instead makes one demo-only admin, ``demo``, with a new random password at every start:
it is printed once, in the start-up block, and never stored in clear (the database keeps its
argon2 hash, as for every user). The new password ends the sessions of the previous demo run.
Everything binds to 127.0.0.1, so the login only ever opens a dashboard on this machine.

The embedded amqtt broker speaks MQTT 3.1.1 only and has no shared subscriptions, so the
demo's platform connects with 3.1.1 and subscribes to status/post plainly (one instance).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from gridguard.edge.agent import scheme_of
from gridguard.platform.database import Database
from gridguard.platform.security import Role
from gridguard.platform.settings import Settings
from gridguard.platform.users import create_user, list_users, update_user
from gridguard.sim.fleet import Fleet, FleetConfig, uid_of
from gridguard.site.config import SiteConfig

DEMO_USER = "demo"
FLEET_PREFIX = "v1/gridguard"
FLEET_UID_PREFIX = "sim"
DEFAULT_FLEET = 300
"""Simulated devices beside the one real site; chosen by measurement (docs/platform.md)."""
PROGRESS_PERIOD_S = 1.0
FLEET_STATUS_INTERVAL_S = 10.0
"""The fleet reports every 10 s (the controlled site every 2 s, for its live chart)."""
SAMPLES_RETENTION_DAYS = 1.0
"""Raw samples kept a day (the platform's default is 7): a demo left running for days holds
about 600 MB of them at 300 devices; the minute rollups behind the history stay."""


def platform_settings(
    site: SiteConfig, broker_port: int, data_dir: Path, http_port: int
) -> Settings:
    """The platform on the demo broker: SQLite in ``data_dir``, HTTP on 127.0.0.1:``http_port``
    (0: a free port), the site's topic prefix and the fleet's."""
    prefixes = tuple(dict.fromkeys((scheme_of(site).prefix_path, FLEET_PREFIX)))
    return Settings(
        db_url=f"sqlite:///{data_dir / 'platform.db'}",
        mqtt_url=f"mqtt://127.0.0.1:{broker_port}",
        host="127.0.0.1",
        port=http_port,
        prefixes=prefixes,
        share_group=None,
        mqtt_version=4,  # the embedded amqtt speaks MQTT 3.1.1 only
        samples_retention_days=SAMPLES_RETENTION_DAYS,
    )


def new_demo_password() -> str:
    return secrets.token_urlsafe(12)


async def reset_demo_user(db: Database, password: str) -> str:
    """Create ``demo`` (admin) or give it ``password`` (which revokes its old sessions)."""
    existing = next((u for u in await list_users(db) if u.name == DEMO_USER), None)
    if existing is None:
        await create_user(
            db, name=DEMO_USER, password=password, role=Role.ADMIN, now=datetime.now(UTC)
        )
    else:
        await update_user(db, user_id=existing.id, password=password, role=Role.ADMIN)
    return DEMO_USER


def login_block(url: str, user: str, password: str) -> list[str]:
    """The start-up block that says where the dashboard is and how to log in."""
    rule = "=" * 68
    return [
        "",
        rule,
        f"  Dashboard   {url}/",
        f"  Log in as   {user}",
        f"  Password    {password}",
        "              (demo only: a new one at every start, printed nowhere else)",
        f"  REST API    {url}/api/  (OpenAPI: {url}/docs)",
        rule,
    ]


def fleet_config(count: int, broker_port: int) -> FleetConfig:
    return FleetConfig(
        count=count,
        mqtt_url=f"mqtt://127.0.0.1:{broker_port}",
        prefix=FLEET_PREFIX,
        uid_prefix=FLEET_UID_PREFIX,
        status_interval_s=FLEET_STATUS_INTERVAL_S,
        connectors=16,
        stats_interval_s=None,
    )


def fleet_range(config: FleetConfig) -> str:
    return f"{uid_of(config, config.first)} .. {uid_of(config, config.first + config.count - 1)}"


async def show_progress(
    fleet: Fleet,
    stop: asyncio.Event,
    out: Callable[[str], None],
    period_s: float = PROGRESS_PERIOD_S,
) -> None:
    """One line per period while the fleet connects, then how long it took (or nothing more
    if ``stop`` comes first)."""
    count, started = fleet.config.count, time.monotonic()
    while not fleet.all_connected.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(fleet.all_connected.wait(), period_s)
        if stop.is_set():
            return
        if not fleet.all_connected.is_set():
            out(f"fleet simulator               {fleet.stats.connected}/{count} connected")
    took_s = time.monotonic() - started
    out(
        f"fleet simulator               {count} devices {fleet_range(fleet.config)}: "
        f"connected in {took_s:.1f} s"
    )
