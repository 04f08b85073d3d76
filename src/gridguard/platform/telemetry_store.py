"""Batched telemetry writes and the telemetry queries.

Reports (status/post, list/post) are buffered and written together: one transaction per flush,
at most one flush per ``flush_interval_s`` (200 ms), samples by executemany, rollups by one
upsert each. A device's row takes only its latest report of the batch. Rows are written in key
order (devices by uid, minutes and peaks by meter), so two instances' flushes lock shared rows
in the same order and cannot deadlock each other.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from gridguard.clock import Clock
from gridguard.platform import telemetry as law
from gridguard.platform.bus import Receipt, acknowledge
from gridguard.platform.database import Database, JsonText, execute_many, utc
from gridguard.platform.devices import record_seen_many
from gridguard.platform.schema import demand_peaks, devices, telemetry_minutes, telemetry_samples
from gridguard.protocol.topics import TopicScheme

log = logging.getLogger("gridguard.platform.telemetry")
FLUSH_INTERVAL_S = 0.2
FLUSH_ATTEMPTS = 3
"""A flush the database refused (two instances' flushes deadlocking, a lost connection) is
tried again at once with the same batch. After the last attempt a batch refused for a reason
that passes (the connection, a deadlock, a serialization failure) is kept for the next flush,
unacknowledged; one refused for what it holds is logged and dropped (and acknowledged), and the
writer goes on."""
OUTAGE_RETRY_S = 2.0
"""The pause between flushes while the database is away."""
TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "55P03", "57P01", "57P02", "57P03"})
"""Serialization failure, deadlock, lock not available, the server shutting down or starting."""


def _transient(exc: sa.exc.DBAPIError | OSError) -> bool:
    """A refusal that the same batch will not meet again once the database is back."""
    if isinstance(exc, OSError | sa.exc.OperationalError | sa.exc.InterfaceError):
        return True
    if exc.connection_invalidated:
        return True
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return code in TRANSIENT_SQLSTATES


@dataclass
class _Batch:
    seen: dict[str, tuple[TopicScheme, dict[str, Any]]] = field(default_factory=dict)
    samples: list[law.Sample] = field(default_factory=list)
    maybe_stored: list[law.Sample] = field(default_factory=list)
    """Samples of reports the broker sent again (an instance may have stored them and died
    before acknowledging): written only where no sample of the same key is stored."""
    receipts: list[Receipt] = field(default_factory=list)
    """Acknowledged once the batch is stored."""

    def __bool__(self) -> bool:
        return bool(self.seen or self.samples or self.maybe_stored or self.receipts)


FlushHook = Callable[[list[law.Sample], datetime], Any]


class TelemetryWriter:
    """Collects reports; :meth:`run` flushes them in batches until stopped (then once more)."""

    def __init__(
        self, db: Database, clock: Clock, *, flush_interval_s: float = FLUSH_INTERVAL_S
    ) -> None:
        self._db = db
        self._clock = clock
        self._interval_s = flush_interval_s
        self._batch = _Batch()
        self._wake = asyncio.Event()
        self.flushes = 0
        self.failing = False
        """The last flush could not reach the database; the next waits ``OUTAGE_RETRY_S``."""
        self._peaks: dict[tuple[str, int, str], tuple[float, float | None]] = {}
        """(device, meter, month) -> (a lower bound of the stored peak, the limit written)."""
        self._contexts: dict[str, _Context] = {}
        self.after_flush: list[Callable[[list[law.Sample], datetime], Any]] = []

    def add(
        self,
        uid: str,
        scheme: TopicScheme,
        values: dict[str, Any],
        *,
        receipt: Receipt | None = None,
    ) -> None:
        """A report from ``uid``: the device row takes ``values`` at the next flush (a
        :class:`JsonText` status is stored as its text); ``receipt`` is acknowledged once
        that flush is stored."""
        now = self._clock.now()
        batch = self._batch
        _scheme, earlier = batch.seen.get(uid, (scheme, {}))
        batch.seen[uid] = (scheme, {**earlier, **values})
        document = values.get("last_status")
        if isinstance(document, JsonText):
            document = document.value
        if isinstance(document, dict):
            samples = law.samples_of(uid, document, now)
            if receipt is not None and receipt.dup:
                batch.maybe_stored += samples
            else:
                batch.samples += samples
        if receipt is not None:
            batch.receipts.append(receipt)
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            waiter = asyncio.create_task(self._wake.wait())
            stopper = asyncio.create_task(stop.wait())
            await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            stopper.cancel()
            started_s = self._clock.monotonic_s()
            await self.flush()
            # start to start: a flush's own time is part of the period, not added to it (added,
            # a flush of N messages taking N x c let the next batch grow by rate x N x c: at
            # 5,000/s batches of seconds, and seconds of lag, before the writer was saturated)
            elapsed_s = self._clock.monotonic_s() - started_s
            period_s = OUTAGE_RETRY_S if self.failing else self._interval_s
            await self._clock.sleep(max(0.0, period_s - elapsed_s))
        await self.flush()

    async def flush(self) -> None:
        self._wake.clear()
        batch, self._batch = self._batch, _Batch()
        if not batch:
            return
        now = self._clock.now()

        def work(conn: Connection) -> list[law.Sample]:
            record_seen_many(self._db, conn, batch.seen, now=now)
            samples = batch.samples + _not_stored(conn, batch.maybe_stored, batch.samples)
            if samples:
                self._write_samples(conn, samples)
            return samples

        samples: list[law.Sample] = []
        for attempt in range(1, FLUSH_ATTEMPTS + 1):
            try:
                samples = await self._db.run_write(work)
                break
            except (sa.exc.DBAPIError, OSError) as exc:  # a deadlock, the database away
                self._peaks.clear()  # what it noted of the rolled-back peaks is not stored
                reason = exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc
                if attempt < FLUSH_ATTEMPTS:
                    log.warning("telemetry flush failed (attempt %d), again: %s", attempt, reason)
                    continue
                if _transient(exc):  # the database is away: keep the batch, nothing acknowledged
                    self._keep(batch)
                    self.failing = True
                    log.warning("telemetry flush failed, kept for the next one: %s", reason)
                    return
                self._drop(batch, reason)
                return
            except Exception as exc:  # a report no database can take must not end the writer
                log.exception("telemetry flush of %d reports failed", len(batch.seen))
                self._drop(batch, exc)
                return
        self.failing = False
        acknowledge(batch.receipts)  # stored: the broker may forget them
        self.flushes += 1
        for hook in self.after_flush:
            await hook(samples, now)

    def _keep(self, batch: _Batch) -> None:
        """A batch the database could not take (an outage) goes before the newer reports, so
        the next flush tries it again; its messages stay unacknowledged meanwhile (the broker's
        receive maximum holds the rest back)."""
        newer, self._batch = self._batch, batch
        for uid, (scheme, values) in newer.seen.items():
            _scheme, earlier = batch.seen.get(uid, (scheme, {}))
            batch.seen[uid] = (scheme, {**earlier, **values})
        batch.samples += newer.samples
        batch.maybe_stored += newer.maybe_stored
        batch.receipts += newer.receipts

    def _drop(self, batch: _Batch, reason: object) -> None:
        """A batch refused for what it holds: dropped, said, and acknowledged all the same
        (sent again it would be refused again and stall every later report)."""
        log.error("telemetry flush of %d reports dropped: %s", len(batch.seen), reason)
        acknowledge(batch.receipts)

    def _write_samples(self, conn: Connection, samples: list[law.Sample]) -> None:
        execute_many(
            conn,
            sa.insert(telemetry_samples),
            [
                {
                    "device_uid": s.device_uid,
                    "meter_id": s.meter_id,
                    "at": s.at,
                    "grid_power_kw": s.grid_power_kw,
                    "demand_kw": s.demand_kw,
                    "failsafe": s.failsafe,
                }
                for s in samples
            ],
        )
        buckets = law.minute_buckets(samples)
        if buckets:
            rows = [_bucket_row(k, b) for k, b in sorted(buckets.items())]  # lock order
            execute_many(conn, self._upsert_minutes(), rows)
            self._update_peaks(conn, buckets)

    def _upsert_minutes(self) -> Any:
        insert = (sqlite if self._db.is_sqlite else postgresql).insert(telemetry_minutes)
        t, new = telemetry_minutes.c, insert.excluded
        return insert.on_conflict_do_update(
            index_elements=["device_uid", "meter_id", "minute"],
            set_={
                "grid_sum_kw": t.grid_sum_kw + new.grid_sum_kw,
                "grid_count": t.grid_count + new.grid_count,
                "grid_min_kw": sa.case(
                    (new.grid_min_kw < t.grid_min_kw, new.grid_min_kw), else_=t.grid_min_kw
                ),
                "grid_max_kw": sa.case(
                    (new.grid_max_kw > t.grid_max_kw, new.grid_max_kw), else_=t.grid_max_kw
                ),
            },
        )

    def _update_peaks(self, conn: Connection, buckets: dict[law.BucketKey, law.Bucket]) -> None:
        """Raise the month's peak of every meter the batch touched.

        The 15-minute demand of each window ending at a touched minute is summed by the
        database (one grouped query per distinct end minute, usually one or two per flush);
        a peak is written only when it beats the highest this writer knows of, or the month's
        limit changed, so a steady stream writes almost none.
        """
        ends: dict[datetime, set[tuple[str, int]]] = {}
        for uid, meter_id, minute in buckets:
            ends.setdefault(minute, set()).add((uid, meter_id))
        best: dict[tuple[str, int], tuple[datetime, float]] = {}
        for end, keys in ends.items():
            for key, demand_kw in _window_demands(conn, end, keys).items():
                if key not in best or demand_kw > best[key][1]:
                    best[key] = (end, demand_kw)
        if best:
            self._raise_peaks(conn, best)

    def _context(self, conn: Connection, uids: set[str]) -> dict[str, _Context]:
        """Time zone and reported strategies per device, re-read after ``CONTEXT_TTL_S``."""
        now_s = self._clock.monotonic_s()
        stale = sorted(
            u for u in uids if now_s - self._contexts.get(u, _NO_CONTEXT).read_s > CONTEXT_TTL_S
        )
        for chunk in _chunks(stale):
            rows = conn.execute(
                sa.select(devices.c.uid, devices.c.time_zone, devices.c.last_list).where(
                    devices.c.uid.in_(chunk)
                )
            )
            for r in rows:
                self._contexts[r.uid] = _Context(r.time_zone, r.last_list or [], now_s)
        return {u: self._contexts.get(u, _NO_CONTEXT) for u in uids}

    def _raise_peaks(
        self, conn: Connection, demands: dict[tuple[str, int], tuple[datetime, float]]
    ) -> None:
        context = self._context(conn, {uid for uid, _ in demands})
        values = []
        for (uid, meter_id), (at, demand_kw) in sorted(demands.items()):  # lock order
            device = context[uid]
            month = law.month_key(at, device.time_zone)
            limit_kw = law.month_limit_kw(device.reported, meter_id, int(month[5:]))
            known = self._peaks.get((uid, meter_id, month))
            if known is not None and demand_kw <= known[0] and limit_kw == known[1]:
                continue
            self._peaks[(uid, meter_id, month)] = (
                max(demand_kw, known[0] if known else demand_kw),
                limit_kw,
            )
            values.append(
                {
                    "device_uid": uid,
                    "meter_id": meter_id,
                    "month": month,
                    "peak_kw": demand_kw,
                    "peak_at": at,
                    "limit_kw": limit_kw,
                }
            )
        if not values:
            return
        insert = (sqlite if self._db.is_sqlite else postgresql).insert(demand_peaks)
        t, new = demand_peaks.c, insert.excluded
        higher = new.peak_kw > t.peak_kw
        conn.execute(
            insert.on_conflict_do_update(
                index_elements=["device_uid", "meter_id", "month"],
                set_={
                    "peak_kw": sa.case((higher, new.peak_kw), else_=t.peak_kw),
                    "peak_at": sa.case((higher, new.peak_at), else_=t.peak_at),
                    "limit_kw": new.limit_kw,
                },
            ),
            values,
        )


@dataclass(frozen=True, slots=True)
class _Context:
    time_zone: str
    reported: list[Any]
    read_s: float


_NO_CONTEXT = _Context("Asia/Shanghai", [], float("-inf"))
CONTEXT_TTL_S = 60.0
"""How long a device's time zone and limits are reused by the peak writer (a changed
over-demand limit reaches the peak table within this)."""


CHUNK = 500
"""Devices per ``IN (...)`` list (SQLite allows 32,766 parameters; PostgreSQL 65,535)."""


def _chunks(items: list[str]) -> list[list[str]]:
    return [items[i : i + CHUNK] for i in range(0, len(items), CHUNK)]


def _not_stored(
    conn: Connection, samples: list[law.Sample], batch: list[law.Sample]
) -> list[law.Sample]:
    """The samples of ``samples`` with no sample of the same (device, meter, at) stored or in
    ``batch`` (the fresh samples of the same flush): a report sent again after the instance
    that stored it died before acknowledging it, or after a reconnect while its first copy
    waited for this flush, is not counted twice. Exact keys, so the samples' (device, meter,
    at) index finds each. Runs after the flush has locked its device rows: an instance taking
    over the same session cannot store the same samples between this look and the insert."""
    if not samples:
        return []
    t = telemetry_samples.c
    keys = {(s.device_uid, s.meter_id, s.at) for s in samples}
    seen: set[tuple[str, int, datetime]] = {(s.device_uid, s.meter_id, s.at) for s in batch}
    ordered = sorted(keys)
    for start in range(0, len(ordered), CHUNK):
        rows = conn.execute(
            sa.select(t.device_uid, t.meter_id, t.at).where(
                sa.tuple_(t.device_uid, t.meter_id, t.at).in_(ordered[start : start + CHUNK])
            )
        )
        seen |= {(r.device_uid, r.meter_id, utc(r.at)) for r in rows}
    fresh: dict[tuple[str, int, datetime], law.Sample] = {}
    for s in samples:
        key = (s.device_uid, s.meter_id, s.at)
        if key not in seen:
            fresh.setdefault(key, s)  # sent again twice within one batch: once
    return list(fresh.values())


def _bucket_row(key: law.BucketKey, bucket: law.Bucket) -> dict[str, Any]:
    uid, meter_id, minute = key
    return {
        "device_uid": uid,
        "meter_id": meter_id,
        "minute": minute,
        "grid_sum_kw": bucket.sum_kw,
        "grid_count": bucket.count,
        "grid_min_kw": bucket.min_kw,
        "grid_max_kw": bucket.max_kw,
    }


def _window_demands(
    conn: Connection, end: datetime, keys: set[tuple[str, int]]
) -> dict[tuple[str, int], float]:
    """15-minute demand of the window ending at ``end`` for each meter in ``keys`` that has
    all 15 minutes (the law's :func:`~gridguard.platform.telemetry.sliding_demand`, summed
    in SQL: export minutes count as zero import)."""
    t = telemetry_minutes.c
    import_kw = sa.case((t.grid_sum_kw > 0, t.grid_sum_kw / t.grid_count), else_=0.0)
    window = law.DEMAND_WINDOW_MIN
    out: dict[tuple[str, int], float] = {}
    for chunk in _chunks(sorted({uid for uid, _ in keys})):
        rows = conn.execute(
            sa.select(t.device_uid, t.meter_id, sa.func.sum(import_kw), sa.func.count())
            .where(t.device_uid.in_(chunk), t.minute > end - window * law.MINUTE, t.minute <= end)
            .group_by(t.device_uid, t.meter_id)
        )
        for uid, meter_id, total_kw, minutes in rows:
            if (uid, meter_id) in keys and minutes == window:
                out[(uid, meter_id)] = float(total_kw) / window
    return out


async def minute_series(
    db: Database, *, uid: str, meter_id: int, since: datetime, until: datetime
) -> list[tuple[datetime, law.Bucket]]:
    t = telemetry_minutes.c
    query = (
        sa.select(t.minute, t.grid_sum_kw, t.grid_count, t.grid_min_kw, t.grid_max_kw)
        .where(t.device_uid == uid, t.meter_id == meter_id, t.minute >= since, t.minute < until)
        .order_by(t.minute)
    )
    async with db.read() as conn:
        rows = await conn.execute(query)
        return [
            (
                law.minute_of(utc(r.minute)),
                law.Bucket(r.grid_sum_kw, r.grid_count, r.grid_min_kw, r.grid_max_kw),
            )
            for r in rows
        ]


async def month_peaks(db: Database, *, uid: str, month: str | None) -> list[sa.Row[Any]]:
    t = demand_peaks.c
    query = sa.select(*demand_peaks.c).where(t.device_uid == uid).order_by(t.month, t.meter_id)
    if month is not None:
        query = query.where(t.month == month)
    async with db.read() as conn:
        return list((await conn.execute(query)).all())


async def prune(db: Database, *, now: datetime, samples_days: float, minutes_days: float) -> None:
    """Retention: raw samples and minute rollups older than their limits go."""
    async with db.write() as conn:
        await conn.execute(
            sa.delete(telemetry_samples).where(
                telemetry_samples.c.at < now - timedelta(days=samples_days)
            )
        )
        await conn.execute(
            sa.delete(telemetry_minutes).where(
                telemetry_minutes.c.minute < now - timedelta(days=minutes_days)
            )
        )
