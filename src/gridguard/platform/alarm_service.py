"""Alarms: raised from telemetry batches, command outcomes and silence; ended, acknowledged;
each start and end POSTed to the rule's webhook (by a sender task, never inside a write)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gridguard.clock import Clock
from gridguard.platform import alarms as law
from gridguard.platform.database import Database, aware, utc
from gridguard.platform.errors import NotFoundError
from gridguard.platform.models import AlarmPublic, AlarmRuleCreate, AlarmRulePublic, Page
from gridguard.platform.paging import fetch_page
from gridguard.platform.schema import alarm_rules, alarms, devices
from gridguard.platform.telemetry import Sample

log = logging.getLogger("gridguard.platform.alarms")
Row = sa.Row[Any]
Key = tuple[int, str, str]  # rule, device, subject


def _without_credentials(url: str) -> str:
    """A webhook URL fit for a log: no user, password or query (they may hold secrets)."""
    parsed = httpx.URL(url)
    return str(parsed.copy_with(username=None, password=None, query=None, fragment=None))


def _alarm(row: Row) -> AlarmPublic:
    m = dict(row._mapping)  # noqa: SLF001 - SQLAlchemy's public row mapping
    for name in ("started_at", "ended_at", "acknowledged_at"):
        m[name] = aware(m[name])
    return AlarmPublic.model_validate(m)


def _rule(row: Row) -> AlarmRulePublic:
    m = dict(row._mapping)  # noqa: SLF001
    m["created_at"] = utc(m["created_at"])
    return AlarmRulePublic.model_validate(m)


class AlarmService:
    def __init__(self, db: Database, clock: Clock, *, webhook_timeout_s: float = 5.0) -> None:
        self._db = db
        self._clock = clock
        self._debounce = law.Debounce()
        self._active: dict[Key, bool] = {}
        self._outbox: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue(maxsize=10_000)
        self._webhook_timeout_s = webhook_timeout_s

    async def _rules(self, kinds: Iterable[str]) -> list[Row]:
        query = sa.select(*alarm_rules.c).where(alarm_rules.c.kind.in_(list(kinds)))
        async with self._db.read() as conn:
            return list((await conn.execute(query)).all())

    async def on_samples(self, samples: list[Sample], _flushed_at: datetime) -> None:
        """After a telemetry flush: judge every telemetry rule on the batch, in time order."""
        rules = await self._rules(law.TELEMETRY_KINDS) if samples else []
        if not rules:
            return
        uids = {s.device_uid for s in samples}
        async with self._db.read() as conn:
            rows = await conn.execute(
                sa.select(devices.c.uid, devices.c.last_list, devices.c.time_zone).where(
                    devices.c.uid.in_(uids)
                )
            )
            context = {r.uid: (r.last_list or [], r.time_zone) for r in rows}
        changes: list[tuple[Key, bool, str, Row, datetime]] = []
        for sample in sorted(samples, key=lambda s: s.at):
            reported, zone = context.get(sample.device_uid, ([], "Asia/Shanghai"))
            for rule in rules:
                if rule.device_uid not in {None, sample.device_uid}:
                    continue
                held, message = law.condition(rule.kind, sample, reported, zone)
                key = (rule.id, sample.device_uid, f"meter {sample.meter_id}")
                active = self._debounce.update(key, held, sample.at, rule.duration_s)
                if self._active.get(key) != active:
                    self._active[key] = active
                    changes.append((key, active, message, rule, sample.at))
        if changes:
            await self._apply(changes)

    async def _apply(self, changes: list[tuple[Key, bool, str, Row, datetime]]) -> None:
        """Each start and end in the order the samples show them (an alarm may start and end
        within one batch)."""
        async with self._db.write() as conn:
            for (_rule_id, uid, subject), active, message, rule, at in changes:
                if active:
                    await self._start(conn, rule, uid=uid, subject=subject, message=message, now=at)
                else:
                    await self._end(conn, rule, uid, subject, at)

    async def _open(
        self, conn: AsyncConnection, rule_id: int, uid: str, subject: str
    ) -> Row | None:
        a = alarms.c
        query = sa.select(*alarms.c).where(
            a.rule_id == rule_id, a.device_uid == uid, a.subject == subject, a.ended_at.is_(None)
        )
        return (await conn.execute(query)).first()

    async def _start(
        self,
        conn: AsyncConnection,
        rule: Row,
        *,
        uid: str,
        subject: str,
        message: str,
        now: datetime,
        instant: bool = False,
    ) -> None:
        if not instant and await self._open(conn, rule.id, uid, subject) is not None:
            return
        result = await conn.execute(
            sa.insert(alarms)
            .values(
                rule_id=rule.id,
                kind=rule.kind,
                device_uid=uid,
                subject=subject,
                severity=rule.severity,
                message=message,
                started_at=now,
                ended_at=now if instant else None,
            )
            .returning(*alarms.c)
        )
        self._notify(rule, "alarm.started", _alarm(result.one()))

    async def _end(
        self, conn: AsyncConnection, rule: Row, uid: str, subject: str, now: datetime
    ) -> None:
        row = await self._open(conn, rule.id, uid, subject)
        if row is None:
            return
        await conn.execute(sa.update(alarms).where(alarms.c.id == row.id).values(ended_at=now))
        self._notify(rule, "alarm.ended", _alarm(row).model_copy(update={"ended_at": now}))

    async def on_command(self, *, device_uid: str, mid: str, state: str, msg: str) -> None:
        """A command rejected or timed out: an event alarm (starts and ends at once)."""
        kind = law.COMMAND_KINDS.get(state)
        if kind is None:
            return
        rules = [r for r in await self._rules([kind]) if r.device_uid in {None, device_uid}]
        if not rules:
            return
        now = self._clock.now()
        text = msg or f"command {mid}: no answer"
        async with self._db.write() as conn:
            for rule in rules:
                await self._start(
                    conn,
                    rule,
                    uid=device_uid,
                    subject=f"command {mid}",
                    message=text,
                    now=now,
                    instant=True,
                )

    async def check_offline(self, *, offline_after_intervals: float) -> None:
        """Start an alarm for each device silent too long; end it when the device is back."""
        rules = await self._rules(["device_offline"])
        if not rules:
            return
        now = self._clock.now()
        async with self._db.read() as conn:
            rows = (
                await conn.execute(
                    sa.select(devices.c.uid, devices.c.last_seen_at, devices.c.report_interval_s)
                )
            ).all()
        async with self._db.write() as conn:
            for row in rows:
                seen = aware(row.last_seen_at)
                limit = timedelta(seconds=row.report_interval_s * offline_after_intervals)
                offline = seen is None or now - seen > limit
                for rule in rules:
                    if rule.device_uid not in {None, row.uid}:
                        continue
                    if offline:
                        message = f"no message since {seen.isoformat() if seen else 'ever'}"
                        await self._start(
                            conn, rule, uid=row.uid, subject="device", message=message, now=now
                        )
                    else:
                        await self._end(conn, rule, row.uid, "device", now)

    def _notify(self, rule: Row, event: str, alarm: AlarmPublic) -> None:
        if not rule.webhook_url:
            return
        document = {"event": event, "alarm": alarm.model_dump(mode="json")}
        try:
            self._outbox.put_nowait((rule.webhook_url, document))
        except asyncio.QueueFull:
            log.warning("webhook outbox full: %s for alarm %d dropped", event, alarm.id)

    async def send_webhooks(self, stop: asyncio.Event) -> None:
        """The sender task: one POST per event, in order; a failing receiver is logged."""
        async with httpx.AsyncClient(timeout=self._webhook_timeout_s) as http:
            while not stop.is_set():
                getter = asyncio.create_task(self._outbox.get())
                stopper = asyncio.create_task(stop.wait())
                await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
                stopper.cancel()
                if not getter.done():
                    getter.cancel()
                    return
                url, document = getter.result()
                try:
                    response = await http.post(url, json=document)
                    response.raise_for_status()
                except httpx.HTTPError as exc:
                    where = _without_credentials(url)
                    log.warning(
                        "webhook %s to %s failed: %s", document["event"], where, type(exc).__name__
                    )


async def create_rule(db: Database, *, body: AlarmRuleCreate, now: datetime) -> AlarmRulePublic:
    values = body.model_dump()
    values["webhook_url"] = str(body.webhook_url) if body.webhook_url else None
    async with db.write() as conn:
        result = await conn.execute(
            sa.insert(alarm_rules).values(**values, created_at=now).returning(*alarm_rules.c)
        )
        return _rule(result.one())


async def list_rules(db: Database) -> list[AlarmRulePublic]:
    async with db.read() as conn:
        return [
            _rule(r)
            for r in await conn.execute(sa.select(*alarm_rules.c).order_by(alarm_rules.c.id))
        ]


async def delete_rule(db: Database, *, rule_id: int) -> None:
    async with db.write() as conn:
        await conn.execute(sa.delete(alarms).where(alarms.c.rule_id == rule_id))
        result = await conn.execute(sa.delete(alarm_rules).where(alarm_rules.c.id == rule_id))
    if result.rowcount == 0:
        raise NotFoundError(f"alarm rule {rule_id} not found")


async def list_alarms(
    db: Database,
    *,
    device_uid: str | None = None,
    kind: str | None = None,
    active: bool | None = None,
    acknowledged: bool | None = None,
    offset: int = 0,
    limit: int = 50,
) -> Page[AlarmPublic]:
    a = alarms.c
    where: list[sa.ColumnElement[bool]] = []
    if device_uid is not None:
        where.append(a.device_uid == device_uid)
    if kind is not None:
        where.append(a.kind == kind)
    if active is not None:
        where.append(a.ended_at.is_(None) if active else a.ended_at.is_not(None))
    if acknowledged is not None:
        where.append(
            a.acknowledged_at.is_not(None) if acknowledged else a.acknowledged_at.is_(None)
        )
    query = sa.select(*alarms.c).where(*where)
    return await fetch_page(
        db, query, order_by=(a.id.desc(),), offset=offset, limit=limit, convert=_alarm
    )


async def acknowledge(db: Database, *, alarm_id: int, by: str, now: datetime) -> AlarmPublic:
    async with db.write() as conn:
        await conn.execute(
            sa.update(alarms)
            .where(alarms.c.id == alarm_id, alarms.c.acknowledged_at.is_(None))
            .values(acknowledged_at=now, acknowledged_by=by)
        )
        row = (await conn.execute(sa.select(*alarms.c).where(alarms.c.id == alarm_id))).first()
    if row is None:
        raise NotFoundError(f"alarm {alarm_id} not found")
    return _alarm(row)
