"""The command round trip: one REST mutation = one MQTT command, answered by the EMS.

:meth:`Commander.send` looks the device up and commits the audit row (``pending``) in one
transaction, publishes at QoS 1 and waits for the result whose ``reply`` is the command's mid.
With no answer within ``timeout_s`` the very same payload (same mid: the EMS applies a mid once
and repeats its reply) is published again, up to ``retries`` times; then the row is
``timed_out`` and the caller gets a 504 naming the mid.

Every result is recorded exactly once per mid (an UPDATE guarded by ``answered_at IS NULL``).
The instance waiting for it records it at once, from what it already knows of the command (one
UPDATE, plus the desired set for a mutation), and then answers the HTTP call; results that
arrive while earlier ones are being written are written together, in arrival order, in one
transaction (a SAVEPOINT each), off the receiving lane; every other
instance receives the result too and queues it: :meth:`Commander.record_others` records, every
``OTHERS_PERIOD_S``, those still unanswered (the sender died, the sweeper re-sent it, or the
answer came after its request gave up: a late one).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ValidationError
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from gridguard.clock import Clock
from gridguard.platform import desired as desired_set
from gridguard.platform.database import Database, aware
from gridguard.platform.devices import scheme_of, store_desired
from gridguard.platform.errors import (
    BrokerUnavailableError,
    CommandFailedError,
    CommandRejectedError,
    CommandTimedOutError,
    InvalidRequestError,
    NotFoundError,
)
from gridguard.platform.models import CommandPublic, Page
from gridguard.platform.paging import fetch_page
from gridguard.platform.schema import commands, devices
from gridguard.platform.users import Principal, TokenCheck
from gridguard.protocol import codec
from gridguard.protocol.errors import ProtocolError
from gridguard.protocol.models import COMMAND_MODELS, RESULT_MODELS, Result, message_type
from gridguard.protocol.timefmt import format_datetime, now_ms
from gridguard.protocol.topics import TopicScheme, build_topic

log = logging.getLogger("gridguard.platform.commands")
OTHERS_PERIOD_S = 0.5
"""How often results this instance was not waiting for are checked and recorded."""

Publish = Callable[[str, bytes], Awaitable[None]]
"""Publish one payload at QoS 1 on a topic; raises ConnectionError when the broker is away."""

StateHook = Callable[..., Awaitable[None]]
"""Called as ``hook(device_uid=, mid=, state=, msg=)`` after a command ends unsuccessfully."""


@dataclass(frozen=True, slots=True)
class Actor:
    """Who sent a command, for the audit."""

    name: str
    token_id: int | None = None

    @classmethod
    def of(cls, principal: Principal) -> Actor:
        return cls(principal.name, principal.token_id)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One command as published (every attempt sends these same bytes)."""

    mid: str
    device_uid: str
    op: str
    purpose: str
    topic: str
    payload: bytes
    request: Any
    user_name: str
    sent_at: datetime


@dataclass(frozen=True, slots=True)
class _Waiting:
    """A request waiting in this instance for its result."""

    out: Outgoing
    future: asyncio.Future[Result]


# The round trip's statements, built once (building a statement costs more CPU than SQLAlchemy's
# compiled-statement cache saves on it); each is executed with its parameters.
_SCHEME_OF = sa.select(
    devices.c.scheme, devices.c.product_key, devices.c.tenant, devices.c.prefix
).where(devices.c.uid == sa.bindparam("p_uid"))
_DESIRED_OF = sa.select(devices.c.desired).where(devices.c.uid == sa.bindparam("p_uid"))
_REPORTED_OF = sa.select(devices.c.last_list).where(devices.c.uid == sa.bindparam("p_uid"))
_INSERT = sa.insert(commands)
_ANSWER = (
    sa.update(commands)
    .where(commands.c.mid == sa.bindparam("p_mid"), commands.c.answered_at.is_(None))
    .values(
        state=sa.bindparam("p_state"),
        code=sa.bindparam("p_code"),
        msg=sa.bindparam("p_msg"),
        data=sa.bindparam("p_data", type_=commands.c.data.type),
        answered_at=sa.bindparam("p_answered_at", type_=commands.c.answered_at.type),
        latency_ms=sa.bindparam("p_latency_ms"),
        late=commands.c.state == "timed_out",
    )
)


def build_command(op: str, *, mid: str, device_uid: str, data: Any) -> BaseModel:
    """The protocol's own command model, validated (InvalidRequestError names field and rule)."""
    envelope: dict[str, Any] = {
        "mid": mid,
        "type": message_type(op),
        "device_uid": device_uid,
        "timestamp": now_ms(),
    }
    if data is not None:
        envelope["data"] = data
    try:
        return COMMAND_MODELS[op].model_validate(envelope)
    except ValidationError as exc:
        raise InvalidRequestError(codec.describe_errors(exc)) from None


class Commander:
    """Sends commands and matches results; one per platform process."""

    def __init__(
        self,
        *,
        db: Database,
        publish: Publish,
        clock: Clock,
        timeout_s: float = 10.0,
        retries: int = 1,
    ) -> None:
        self._db = db
        self._publish = publish
        self._clock = clock
        self.timeout_s = timeout_s
        self.retries = retries
        self._pending: dict[str, _Waiting] = {}
        self._others: list[tuple[str, str, Result]] = []
        self._own: list[tuple[_Waiting, Result]] = []
        self._recording: set[str] = set()
        self._recorder: asyncio.Task[None] | None = None
        self.on_failure: list[StateHook] = []

    async def send(
        self,
        *,
        device_uid: str,
        op: str,
        data: Any,
        actor: Actor | TokenCheck,
        purpose: str = "operator",
    ) -> Result:
        """Round trip; returns the 200 result or raises a CommandError subclass. ``actor``: who
        sends it, or the token to check first, in the insert transaction (UnauthorizedError /
        ForbiddenError, nothing written)."""
        mid = str(uuid.uuid4())
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        outgoing = await self._insert(
            mid=mid, device_uid=device_uid, op=op, data=data, actor=actor, purpose=purpose
        )
        self._pending[mid] = _Waiting(outgoing, future)
        try:
            result = await self._attempts(outgoing, future)
        finally:
            self._pending.pop(mid, None)
        return _accepted(result, mid)

    async def _attempts(self, out: Outgoing, future: asyncio.Future[Result]) -> Result:
        for attempt in range(self.retries + 1):
            if attempt:
                await self._count_retry(out.mid, attempt)
            try:
                await self._publish(out.topic, out.payload)
            except ConnectionError as exc:
                await self._finish_unanswered(out.mid, "failed", f"broker unavailable: {exc}")
                raise BrokerUnavailableError(f"broker unavailable: {exc}", mid=out.mid) from exc
            try:
                return await asyncio.wait_for(asyncio.shield(future), self.timeout_s)
            except TimeoutError:
                log.info("no %s result for %s (attempt %d)", out.op, out.mid, attempt + 1)
        await self._finish_unanswered(out.mid, "timed_out", None)
        await self._announce(out.device_uid, out.mid, "timed_out", "")
        raise CommandTimedOutError(
            f"{out.device_uid} did not answer {out.op} {out.mid} in {self.retries + 1} "
            f"attempt(s) of {self.timeout_s:g} s",
            mid=out.mid,
        )

    async def _insert(
        self,
        *,
        mid: str,
        device_uid: str,
        op: str,
        data: Any,
        actor: Actor | TokenCheck,
        purpose: str,
    ) -> Outgoing:
        """The command, validated, and its ``pending`` row committed (one transaction: the
        token checked if it is one, the device looked up, the row written); nothing is written
        for a refused token, an unknown device or a bad body."""
        now = self._clock.now()

        def work(conn: Connection) -> Outgoing:
            who = actor if isinstance(actor, Actor) else Actor.of(actor.principal_in(conn))
            device = conn.execute(_SCHEME_OF, {"p_uid": device_uid}).first()
            if device is None:
                raise NotFoundError(f"device {device_uid!r} not found")
            scheme = TopicScheme(
                device.scheme,
                product_key=device.product_key,
                tenant=device.tenant,
                prefix=device.prefix,
            )
            command = build_command(op, mid=mid, device_uid=device_uid, data=data)
            out = Outgoing(
                mid=mid,
                device_uid=device_uid,
                op=op,
                purpose=purpose,
                topic=build_topic(scheme, device_uid, op, "command"),
                payload=codec.encode(command),
                request=command.model_dump(mode="json", exclude_none=True).get("data"),
                user_name=who.name,
                sent_at=now,
            )
            conn.execute(
                _INSERT,
                {
                    "mid": out.mid,
                    "device_uid": out.device_uid,
                    "op": out.op,
                    "purpose": out.purpose,
                    "request": out.request,
                    "user_name": who.name,
                    "token_id": who.token_id,
                    "state": "pending",
                    "sent_at": now,
                    "last_sent_at": now,
                },
            )
            return out

        return await self._db.run_write(work)

    async def _count_retry(self, mid: str, attempt: int) -> None:
        async with self._db.write() as conn:
            await conn.execute(
                sa.update(commands)
                .where(commands.c.mid == mid)
                .values(retries=attempt, last_sent_at=self._clock.now())
            )

    async def _finish_unanswered(self, mid: str, state: str, msg: str | None) -> None:
        async with self._db.write() as conn:
            await conn.execute(
                sa.update(commands)
                .where(commands.c.mid == mid, commands.c.answered_at.is_(None))
                .values(state=state, msg=msg)
            )

    async def on_result(self, *, op: str, device_uid: str, payload: bytes) -> None:
        """A result: recorded at once and handed to the request when this instance holds it;
        otherwise queued for :meth:`record_others` (the sender, if alive, records it first)."""
        try:
            result = codec.parse_model(RESULT_MODELS[op], payload)
        except ProtocolError as exc:
            log.warning("unreadable %s result from %s: %s", op, device_uid, exc)
            return
        waiting = self._pending.get(result.reply)
        if waiting is None or (waiting.out.device_uid, waiting.out.op) != (device_uid, op):
            self._others.append((op, device_uid, result))
            return
        if waiting.future.done() or result.reply in self._recording:
            return  # a repeated reply (the EMS answers a re-sent mid again)
        self._recording.add(result.reply)
        self._own.append((waiting, result))
        if self._recorder is None or self._recorder.done():
            self._recorder = asyncio.create_task(self._record_own(), name="platform-own-results")

    async def _record_own(self) -> None:
        """The results of commands this instance sent, in arrival order, each queued while
        the previous ones were being written going into one transaction (each in a SAVEPOINT:
        one failing is not recorded, the others are); no need to read a row back, the sender
        knows it. The receiving lane is not held up meanwhile. A result whose write failed
        answers nobody: the request's retry gets the EMS's repeated reply."""
        while self._own:
            batch = list(self._own)
            self._own.clear()
            now = self._clock.now()
            try:
                outcomes = await self._db.run_write(functools.partial(_write_answers, batch, now))
            except Exception:
                log.exception("recording %d result(s) failed", len(batch))
                outcomes = [(False, None)] * len(batch)
            for (waiting, result), (written, state) in zip(batch, outcomes, strict=True):
                self._recording.discard(result.reply)
                if not written:
                    continue
                if state is not None and state != "succeeded":
                    await self._announce(waiting.out.device_uid, result.reply, state, result.msg)
                if not waiting.future.done():
                    waiting.future.set_result(result)

    async def run(self, stop: asyncio.Event) -> None:
        """Every ``OTHERS_PERIOD_S``: record the results nobody here was waiting for."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), OTHERS_PERIOD_S)
            await self.record_others()

    async def record_others(self) -> int:
        """Results of commands sent by another instance (maybe dead), by the sweeper, or
        answered after their request gave up (late): the ones whose row is still unanswered
        are recorded now (one query finds them). Returns how many were recorded."""
        queued, self._others = self._others, []
        if not queued:
            return 0
        open_mids: set[str] = set()
        mids = sorted({result.reply for _, _, result in queued})
        async with self._db.read() as conn:
            for start in range(0, len(mids), 500):
                chunk = mids[start : start + 500]
                rows = await conn.execute(
                    sa.select(commands.c.mid).where(
                        commands.c.mid.in_(chunk), commands.c.answered_at.is_(None)
                    )
                )
                open_mids.update(r.mid for r in rows)
        recorded = 0
        for op, device_uid, result in queued:
            if result.reply not in open_mids:
                continue
            work = functools.partial(
                _record, result=result, op=op, device_uid=device_uid, now=self._clock.now()
            )
            try:
                state = await self._db.run_write(work)
            except sa.exc.DBAPIError as exc:  # a deadlock with the sender recording it, say
                log.warning("recording the late result of %s failed: %s", result.reply, exc.orig)
                continue  # still pending: the sweeper re-sends it, the EMS answers again
            if state is not None:
                recorded += 1
                if state != "succeeded":
                    await self._announce(device_uid, result.reply, state, result.msg)
        return recorded

    async def sweep(self, *, grace_s: float) -> tuple[int, int]:
        """Orphans: pending commands whose last attempt is older than one timeout plus
        ``grace_s`` (a live sender would have retried or finished them by now; their sender
        died). Each is re-sent under its mid while retries remain, else timed out. Rows are
        claimed ``FOR UPDATE SKIP LOCKED``, so two sweeping instances never share one."""
        now = self._clock.now()
        cutoff = now - timedelta(seconds=self.timeout_s + grace_s)
        query = (
            sa.select(
                *commands.c,
                devices.c.scheme,
                devices.c.product_key,
                devices.c.tenant,
                devices.c.prefix,
            )
            .join(devices, devices.c.uid == commands.c.device_uid)
            .where(commands.c.state == "pending", commands.c.last_sent_at < cutoff)
            .with_for_update(of=commands, skip_locked=True)
        )
        retried, expired = 0, []
        async with self._db.write() as conn:
            for row in (await conn.execute(query)).all():
                if row.retries < self.retries:
                    await self._resend(conn, row, now)
                    retried += 1
                else:
                    await conn.execute(
                        sa.update(commands)
                        .where(commands.c.mid == row.mid, commands.c.answered_at.is_(None))
                        .values(state="timed_out", msg="no answer; its sender is gone")
                    )
                    expired.append(row)
        for row in expired:
            await self._announce(row.device_uid, row.mid, "timed_out", "")
        return retried, len(expired)

    async def _resend(self, conn: AsyncConnection, row: Any, now: datetime) -> None:
        command = build_command(row.op, mid=row.mid, device_uid=row.device_uid, data=row.request)
        topic = build_topic(scheme_of(row), row.device_uid, row.op, "command")
        try:
            await self._publish(topic, codec.encode(command))
        except ConnectionError as exc:
            log.warning("sweeper could not re-send %s: %s", row.mid, exc)
            return
        await conn.execute(
            sa.update(commands)
            .where(commands.c.mid == row.mid)
            .values(retries=row.retries + 1, last_sent_at=now)
        )

    async def _announce(self, device_uid: str, mid: str, state: str, msg: str) -> None:
        for hook in self.on_failure:
            await hook(device_uid=device_uid, mid=mid, state=state, msg=msg)


def _record(
    conn: Connection, *, result: Result, op: str, device_uid: str, now: datetime
) -> str | None:
    """The row's new state, or None if the result was not news (not ours, or repeated)."""
    row = conn.execute(
        sa.select(*commands.c).where(
            commands.c.mid == result.reply,
            commands.c.device_uid == device_uid,
            commands.c.op == op,
            commands.c.answered_at.is_(None),
        )
    ).first()
    if row is None:
        return None  # not ours, or already recorded (a repeated reply)
    return _write_answer(conn, command=row, result=result, sent_at=aware(row.sent_at), now=now)


def _write_answers(
    batch: list[tuple[_Waiting, Result]], now: datetime, conn: Connection
) -> list[tuple[bool, str | None]]:
    """:func:`_write_answer` for each, each in a SAVEPOINT of its own: (written, the new
    state) in the batch's order; one that raises is rolled back alone (written False)."""
    outcomes: list[tuple[bool, str | None]] = [(False, None)] * len(batch)
    # rows in device order (the lock order of the telemetry flush, which writes the same
    # device rows): in arrival order, two devices' results could deadlock against a flush
    order = sorted(range(len(batch)), key=lambda i: batch[i][0].out.device_uid)
    for index in order:
        waiting, result = batch[index]
        savepoint = conn.begin_nested()
        try:
            state = _write_answer(
                conn, command=waiting.out, result=result, sent_at=waiting.out.sent_at, now=now
            )
        except Exception:
            savepoint.rollback()
            log.exception("recording the result of %s failed", result.reply)
        else:
            savepoint.commit()
            outcomes[index] = (True, state)
    return outcomes


def _write_answer(
    conn: Connection, *, command: Any, result: Result, sent_at: datetime | None, now: datetime
) -> str | None:
    """``result`` on the command's row (``command``: that row or the sender's
    :class:`Outgoing`), then the reported and desired sets; None if another instance recorded
    it first (the UPDATE is guarded by ``answered_at IS NULL``: idempotent on mid)."""
    data = result.model_dump(mode="json").get("data")
    state = _STATES.get(result.code, "failed")
    updated = conn.execute(
        _ANSWER,
        {
            "p_mid": command.mid,
            "p_state": state,
            "p_code": result.code,
            "p_msg": result.msg,
            "p_data": data,
            "p_answered_at": now,
            "p_latency_ms": (now - sent_at).total_seconds() * 1000 if sent_at else None,
        },
    )
    if updated.rowcount != 1:
        return None
    _store_reported(conn, command.device_uid, result, data, now)
    if result.code == 200 and command.op in desired_set.MUTATIONS:
        _advance_desired(conn, command, data, now)
    return state


_STATES = {200: "succeeded", 400: "rejected", 500: "failed"}


def _store_reported(conn: Connection, uid: str, result: Result, data: Any, now: datetime) -> None:
    """A sync result carries the full list, exactly like list/post (it counts as one);
    ``data``: the result's, as JSON."""
    if result.code == 200 and result.type == message_type("sync") and isinstance(data, list):
        conn.execute(
            sa.update(devices)
            .where(devices.c.uid == uid)
            .values(last_list=data, last_list_at=now, last_seen_at=now)
        )


def _advance_desired(conn: Connection, row: Any, data: Any, now: datetime) -> None:
    """``row``: the command (its audit row, or the sender's :class:`Outgoing`)."""
    device = conn.execute(_DESIRED_OF, {"p_uid": row.device_uid}).first()
    if device is None:
        return  # the device was deleted meanwhile: no desired set to keep
    if row.purpose == "reconcile" or device.desired is None:
        # the reported set only when it is the base: reading and parsing the whole list/post
        # for every command was most of this function
        reported = conn.execute(_REPORTED_OF, {"p_uid": row.device_uid}).scalar()
        base = desired_set.from_reported(reported or [])
    else:
        base = desired_set.from_documents(device.desired)
    try:
        state = desired_set.apply_success(base, row.op, row.request, data, format_datetime(now))
    except (ValueError, KeyError) as exc:
        log.warning("desired set of %s not advanced by %s: %s", row.device_uid, row.mid, exc)
        return
    documents = desired_set.to_documents(state)
    store_desired(conn, uid=row.device_uid, documents=documents, by=row.user_name, now=now)


def _accepted(result: Result, mid: str) -> Result:
    if result.code == 200:
        return result
    if result.code == 400:
        raise CommandRejectedError(result.msg, mid=mid, code=400)
    raise CommandFailedError(result.msg or "the EMS failed internally", mid=mid, code=result.code)


def command_public(row: sa.Row[tuple[Any, ...]]) -> CommandPublic:
    m = dict(row._mapping)  # noqa: SLF001 - SQLAlchemy's public row mapping
    for key in ("sent_at", "answered_at"):
        m[key] = aware(m[key])
    return CommandPublic.model_validate(m)


async def get_command(db: Database, *, mid: str) -> CommandPublic | None:
    async with db.read() as conn:
        row = (await conn.execute(sa.select(*commands.c).where(commands.c.mid == mid))).first()
    return command_public(row) if row else None


async def list_commands(
    db: Database,
    *,
    device_uid: str | None = None,
    user_name: str | None = None,
    state: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    offset: int = 0,
    limit: int = 50,
) -> Page[CommandPublic]:
    where: list[sa.ColumnElement[bool]] = []
    if device_uid is not None:
        where.append(commands.c.device_uid == device_uid)
    if user_name is not None:
        where.append(commands.c.user_name == user_name)
    if state is not None:
        where.append(commands.c.state == state)
    if since is not None:
        where.append(commands.c.sent_at >= since)
    if until is not None:
        where.append(commands.c.sent_at < until)
    query = sa.select(*commands.c).where(*where)
    order = (commands.c.sent_at.desc(), commands.c.mid)
    return await fetch_page(
        db, query, order_by=order, offset=offset, limit=limit, convert=command_public
    )
