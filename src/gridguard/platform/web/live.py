"""Server-Sent Events: what changed in the shared database, whichever instance wrote it.

Each stream polls the database (every ``poll_s``) for the device's newest status and strategy
list and for command and alarm rows changed since its cursor, so a browser sees reports and
results that another platform instance ingested, on SQLite and PostgreSQL alike. The cursor is
the event id (``status.list.command.alarm`` in epoch ms); a browser that reconnects sends it
back as ``Last-Event-ID`` and resumes where it was. Command and alarm queries look back
``OVERLAP`` past the cursor (a row committed late is still seen) and skip what this stream
already sent. A stream ends after ``lifetime_s`` (the browser reconnects at once), so a stopping
server never waits on an open stream for long.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from gridguard.clock import Clock
from gridguard.platform.database import Database, aware
from gridguard.platform.web import queries
from gridguard.platform.web.views import live_point, meters_of

OVERLAP = timedelta(seconds=2)
RETRY_MS = 1000


def _ms(moment: datetime | None) -> int:
    return int(moment.timestamp() * 1000) if moment else 0


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


@dataclass(frozen=True, slots=True)
class Cursor:
    status_ms: int
    list_ms: int
    command_ms: int
    alarm_ms: int

    def encode(self) -> str:
        return f"{self.status_ms}.{self.list_ms}.{self.command_ms}.{self.alarm_ms}"

    @classmethod
    def parse(cls, text: str | None, now: datetime) -> Cursor:
        """The browser's ``Last-Event-ID``; missing or unreadable: from now on."""
        parts = (text or "").split(".")
        if len(parts) == 4 and all(p.isdigit() for p in parts):
            status, listed, command, alarm = (int(p) for p in parts)
            return cls(status, listed, command, alarm)
        start = _ms(now)
        return cls(start, start, start, start)


def sse(event: str, data: Any, cursor: Cursor) -> str:
    return f"id: {cursor.encode()}\nevent: {event}\ndata: {json.dumps(data, default=str)}\n\n"


@dataclass
class Poller:
    """One browser's view: the device it watches (None = the whole fleet) and what it sent."""

    db: Database
    uid: str | None
    cursor: Cursor
    sent: dict[str, str]

    async def poll(self) -> list[tuple[str, Any]]:
        events: list[tuple[str, Any]] = []
        if self.uid is not None:
            events += await self._device()
        events += await self._commands()
        events += await self._alarms()
        return events

    async def _device(self) -> list[tuple[str, Any]]:
        assert self.uid is not None
        marks = await queries.device_marks(self.db, uid=self.uid)
        out: list[tuple[str, Any]] = []
        if marks.status_at and _ms(marks.status_at) > self.cursor.status_ms and marks.status:
            points = {
                str(m): live_point(marks.status, m, marks.status_at).as_json()
                for m in meters_of(marks.status)
            }
            self.cursor = replace(self.cursor, status_ms=_ms(marks.status_at))
            out.append(("status", {"meters": points}))
        if marks.list_at and _ms(marks.list_at) > self.cursor.list_ms:
            self.cursor = replace(self.cursor, list_ms=_ms(marks.list_at))
            out.append(("list", {"at": marks.list_at.isoformat()}))
        return out

    def _fresh(self, key: str, version: str) -> bool:
        if self.sent.get(key) == version:
            return False
        self.sent[key] = version
        return True

    async def _commands(self) -> list[tuple[str, Any]]:
        since = _at(self.cursor.command_ms) - OVERLAP
        out: list[tuple[str, Any]] = []
        for row in await queries.changed_commands(self.db, uid=self.uid, since=since):
            moment = _ms(aware(row.at))
            self.cursor = replace(self.cursor, command_ms=max(self.cursor.command_ms, moment))
            if self._fresh(f"c{row.mid}", row.state):
                data = {k: getattr(row, k) for k in ("mid", "device_uid", "op", "state", "code")}
                out.append(("command", {**data, "msg": row.msg}))
        return out

    async def _alarms(self) -> list[tuple[str, Any]]:
        since = _at(self.cursor.alarm_ms) - OVERLAP
        out: list[tuple[str, Any]] = []
        for row in await queries.changed_alarms(self.db, uid=self.uid, since=since):
            moments = [aware(row.started_at), aware(row.ended_at), aware(row.acknowledged_at)]
            latest = max(_ms(m) for m in moments)
            self.cursor = replace(self.cursor, alarm_ms=max(self.cursor.alarm_ms, latest))
            version = f"{_ms(moments[1])}.{_ms(moments[2])}"
            if self._fresh(f"a{row.id}", version):
                out.append(
                    (
                        "alarm",
                        {
                            "id": row.id,
                            "device_uid": row.device_uid,
                            "kind": row.kind,
                            "message": row.message,
                            "open": row.ended_at is None,
                            "acknowledged": row.acknowledged_at is not None,
                        },
                    )
                )
        return out


async def stream(
    poller: Poller, clock: Clock, *, poll_s: float = 0.25, lifetime_s: float = 15.0
) -> AsyncIterator[str]:
    """The event stream of one browser, until ``lifetime_s`` has passed."""
    yield f"retry: {RETRY_MS}\n\n"
    end_s = clock.monotonic_s() + lifetime_s
    while clock.monotonic_s() < end_s:
        for kind, data in await poller.poll():
            yield sse(kind, data, poller.cursor)
        await clock.sleep(poll_s)
    yield f"id: {poller.cursor.encode()}\nevent: bye\ndata: {{}}\n\n"
