"""The command service: one command in, one durable reply out (D2-D13).

It owns the result codes (D3: 200, 400 for anything a peer sent, 500 for a store failure),
idempotency (D5: a repeated (op, mid) gets its stored reply) and sync's full list (D12).

``handle(op, payload)`` never raises: bad input becomes a 400 reply, a store failure or a bug
a 500 whose message names no path or secret (the log has the detail). A command that broke its
handler twice is dead-lettered: its 500 is stored under its mid and it is not run again.

A command's changes and its reply are committed in one transaction *before* the reply is
returned for publishing, and the in-memory view is updated only after the commit succeeded, so
what the agent says and what it stores never diverge.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from gridguard.edge.batch import (
    Batch,
    Decoded,
    Handled,
    command_digest,
    payload_key,
    replayed,
    reply_key,
)
from gridguard.edge.report import LiveValues, WireReport, splice_data
from gridguard.edge.stored import Quarantined, displacing, load_stored, quarantine_outcome
from gridguard.protocol import codec
from gridguard.protocol.errors import ProtocolError
from gridguard.protocol.models import (
    RESULT_MODELS,
    Envelope,
    ListPost,
    message_type,
)
from gridguard.protocol.timefmt import format_time_ns
from gridguard.redact import redact
from gridguard.site.config import SiteConfig
from gridguard.store.base import (
    DEFAULT_KEEP_REPLIES,
    CommitEntry,
    StoredReply,
    StoredStrategy,
    StoreError,
    StrategyStore,
)
from gridguard.strategy import rules
from gridguard.strategy.model import Strategy

log = logging.getLogger("gridguard.edge.commands")
NS_PER_MS = 1_000_000
DEAD_LETTER_AFTER = 2
"""A command whose handling failed this many times is answered from the store from then on."""
MAX_TRACKED_FAILURES = 10_000


class LiveView(Protocol):
    """Live values a report carries: demand per meter (D18) and who is online."""

    def dynamic_demand_kw(self) -> Mapping[int, int]: ...

    def online(self, kind: str, device_id: int) -> bool: ...

    def revision(self) -> object:
        """An object that is replaced (a new identity) whenever a live value may change: while
        it is the same, a report reuses every unchanged strategy's wire object as it is."""
        ...


class StaticLiveView:
    """No control engine: no demand recorded yet, every device taken as online."""

    def dynamic_demand_kw(self) -> Mapping[int, int]:
        return {}

    def online(self, kind: str, device_id: int) -> bool:  # noqa: ARG002
        return True

    def revision(self) -> object:
        return None


class CommandService:
    """Applies commands to the stored strategies; owns the in-memory view of them."""

    def __init__(
        self,
        *,
        site: SiteConfig,
        store: StrategyStore,
        live: LiveView | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self._site = site
        self._store = store
        self._live = live or StaticLiveView()
        self._clock_ns = clock_ns
        self._strategies: dict[int, Strategy] = {}
        self._quarantined: dict[int, Quarantined] = {}
        self._failures: dict[str, int] = {}
        self._next_id = 1
        self._reply_keys: set[str] = set()
        self._reload_keys_at = 2 * DEFAULT_KEEP_REPLIES
        self._site_view = rules.SiteView({m.id: m.per_phase for m in site.meters})
        self._report = WireReport(site)

    async def load(self) -> None:
        """Read the stored strategies (at start, after migrations); quarantine bad ones."""
        rows = await self._store.list_strategies()
        self._strategies, quarantined = load_stored(rows)
        self._quarantined = {q.id: q for q in quarantined}
        self._next_id = await self._store.next_id()
        await self._load_reply_keys()

    async def _load_reply_keys(self) -> None:
        """Cache the stored reply keys: a key not in the cache is not stored, so a new command
        costs no lookup. The store prunes old replies; the cache is re-read when it has grown
        to twice what the store held (stale keys only cost a lookup that finds nothing)."""
        keys = await self._store.reply_keys()
        self._reply_keys = set(keys)
        self._reload_keys_at = 2 * max(DEFAULT_KEEP_REPLIES, len(keys))

    def set_live_view(self, live: LiveView) -> None:
        self._live = live

    @property
    def quarantined(self) -> list[Quarantined]:
        """Stored strategies that failed validation at load: reported, never enforced (until a
        command deletes or replaces them, see :mod:`.stored`)."""
        return [self._quarantined[k] for k in sorted(self._quarantined)]

    @property
    def strategies(self) -> list[Strategy]:
        """The stored strategies in id order."""
        return [self._strategies[k] for k in sorted(self._strategies)]

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock_ns() / 1e9, tz=UTC)

    def list_post(self) -> bytes:
        """The list/post report (D13)."""
        ns = self._clock_ns()
        message = codec.encode(ListPost(**self._envelope("list", ns), data=[]))
        return splice_data(message, self._wire_list(self._strategies))

    def stale_report(self) -> list[int]:
        """The ids whose wire object is out of date (changed, or its live values did)."""
        return self._report.stale(self._strategies, self._live_values())

    def warm_report(self, ids: Sequence[int]) -> None:
        """Encode the wire objects of ``ids`` (those still stored), for the next report. The
        reporter warms a large site's list in slices between commands, so that no report
        builds it all at once in front of a command."""
        present = [k for k in ids if k in self._strategies]
        self._report.encoded(self._strategies, self._live_values(), ids=present)

    def _live_values(self) -> LiveValues:
        live = self._live
        return LiveValues(self._now(), live.dynamic_demand_kw(), live.online, live.revision())

    def _wire_list(self, strategies: Mapping[int, Strategy]) -> list[bytes]:
        """Each strategy's encoded wire object, in id order (cached, see WireReport)."""
        return self._report.encoded(strategies, self._live_values())

    def _envelope(self, op: str, ns: int, trace_id: str | None = None) -> dict[str, Any]:
        return {
            "mid": str(uuid.uuid4()),
            "type": message_type(op),
            "device_uid": self._site.device.uid,
            "timestamp": ns // NS_PER_MS,
            "trace_id": trace_id,
        }

    async def handle(self, op: str, payload: bytes) -> Handled:
        """Handle one command payload received on ``{op}/command``."""
        (handled,) = await self.handle_batch([(op, payload)])
        return handled

    async def handle_batch(self, commands: Sequence[tuple[str, bytes]]) -> list[Handled]:
        """Handle commands that arrived together, in order, with ONE commit (group commit).

        Each command sees the effects of the ones before it, exactly as if they were handled
        one by one; their writes and replies are committed in one transaction, and only then
        are the replies returned for publishing. If the commit of several fails, they are
        handled again one by one, so one command's failure is a 500 for it alone.
        """
        started = time.perf_counter()
        handled = await self._handle_together(commands)
        self._log(handled, started)
        return handled

    async def _handle_together(self, commands: Sequence[tuple[str, bytes]]) -> list[Handled]:
        batch = Batch(dict(self._strategies), self._next_id, dict(self._quarantined))
        decoded = [self._decode(op, payload) for op, payload in commands]
        pairs = list(zip((op for op, _ in commands), decoded, strict=True))
        keys = [reply_key(op, d.mid) for op, d in pairs if d.mid]
        keys = [k for k in keys if k in self._reply_keys]
        try:
            batch.stored = await self._store.get_replies(keys) if keys else {}
        except Exception as exc:  # noqa: BLE001 - any store failure is a 500, never a crash
            return [self._internal_error(op, d, exc) for op, d in pairs]
        handled = [self._guarded_step(batch, op, d) for op, d in pairs]
        if batch.entries:
            try:
                await self._store.commit_batch(batch.entries)
            except Exception as exc:  # noqa: BLE001 - as above
                if len(commands) > 1:
                    return await self._one_by_one(commands)
                return [
                    h if h.duplicate else self._internal_error(h.op, d, exc)
                    for h, (_, d) in zip(handled, pairs, strict=True)
                ]
        self._strategies, self._next_id = batch.strategies, batch.next_id
        self._settle_quarantine(batch.quarantined)
        self._reply_keys.update(batch.fresh)
        if len(self._reply_keys) > self._reload_keys_at:
            await self._reload_reply_keys()
        return handled

    def _settle_quarantine(self, quarantined: dict[int, Quarantined]) -> None:
        for gone in sorted(self._quarantined.keys() - quarantined.keys()):
            event = {"event": "quarantined_strategy_removed", "id": gone}
            log.warning(json.dumps(event))
        self._quarantined = quarantined

    def failed(self, commands: Sequence[tuple[str, bytes]]) -> list[Handled]:
        """500s for commands whose handling broke outside every inner guard (last resort)."""
        handled: list[Handled] = []
        for op, payload in commands:
            mid, trace_id = codec.recover_ids(payload)
            decoded = Decoded(None, None, mid, trace_id, payload=payload)
            reply = self._error_reply(op, decoded, 500, "internal error (the agent logged it)")
            handled.append(Handled(op=op, reply=reply, code=500, changed=False, mid=mid))
        return handled

    async def _one_by_one(self, commands: Sequence[tuple[str, bytes]]) -> list[Handled]:
        log.warning("group commit of %d commands failed; committing them one by one", len(commands))
        handled: list[Handled] = []
        for command in commands:
            handled.extend(await self._handle_together([command]))
        return handled

    async def _reload_reply_keys(self) -> None:
        try:
            await self._load_reply_keys()
        except StoreError as exc:  # keep the larger cache: it is still correct, only bigger
            log.warning("could not re-read reply keys: %s", exc)

    def _log(self, handled: list[Handled], started: float) -> None:
        """One structured line per command: mid, op, code, ms (the batch's time)."""
        if not log.isEnabledFor(logging.INFO):
            return
        elapsed_ms = round((time.perf_counter() - started) * 1000, 3)
        for h in handled:
            fields = {
                "event": "command",
                "mid": h.mid,
                "op": h.op,
                "code": h.code,
                "ms": elapsed_ms,
                "duplicate": h.duplicate,
                "batch": len(handled),
            }
            log.info(json.dumps(fields))

    def _decode(self, op: str, payload: bytes) -> Decoded:
        try:
            command = codec.decode_command(
                op,
                payload,
                device_uid=self._site.device.uid,
                max_bytes=self._site.mqtt.max_payload_bytes,
            )
            digest = command_digest(command)
        except ProtocolError as exc:
            return Decoded(None, exc, exc.mid, exc.trace_id, payload=payload)
        except Exception as exc:  # noqa: BLE001 - a decoder bug: this command's 500
            return Decoded(None, None, None, None, payload=payload, failure=exc)
        return Decoded(command, None, command.mid, command.trace_id, digest, payload)

    def _guarded_step(self, batch: Batch, op: str, decoded: Decoded) -> Handled:
        """:meth:`_step`, any failure of which is this command's 500 (and never the batch's)."""
        if decoded.failure is not None:
            return self._broken(batch, op, decoded, decoded.failure)
        try:
            return self._step(batch, op, decoded)
        except Exception as exc:  # noqa: BLE001 - containment: see the module docstring
            return self._broken(batch, op, decoded, exc)

    def _broken(self, batch: Batch, op: str, decoded: Decoded, exc: Exception) -> Handled:
        """A 500 for a command the handler failed on; the second time, dead-lettered: the 500
        is stored under its mid (a redelivery gets it without running anything) and logged
        with the traceback."""
        key = reply_key(op, decoded.mid) if decoded.mid else payload_key(op, decoded.payload)
        failures = self._failures.get(key, 0) + 1
        reply = self._error_reply(op, decoded, 500, "internal error (the agent logged it)")
        if failures < DEAD_LETTER_AFTER:
            if len(self._failures) >= MAX_TRACKED_FAILURES:
                self._failures.clear()
            self._failures[key] = failures
            log.error("command %s mid=%s failed: %r", op, decoded.mid, exc, exc_info=exc)
        else:
            self._failures.pop(key, None)
            log.error(
                "dead-letter: %s mid=%s failed %d times", op, decoded.mid, failures, exc_info=exc
            )
            if decoded.mid is not None:
                batch.add(CommitEntry(reply=StoredReply(key, op, reply)), None)
        return Handled(op=op, reply=reply, code=500, changed=False, mid=decoded.mid)

    def _step(self, batch: Batch, op: str, decoded: Decoded) -> Handled:
        """One command against the batch's working state."""
        key = reply_key(op, decoded.mid) if decoded.mid else None
        if key is not None:
            previous = batch.replayable(key)
            if previous is not None:  # D5: a repeated mid gets the stored reply ...
                if previous.digest and decoded.digest and previous.digest != decoded.digest:
                    return self._reused(op, decoded)  # ... if it is the same command
                handled = replayed(op, previous, decoded.mid or "")
                if op == "sync" and handled.code == 200:  # ... a sync's with today's list
                    return dataclasses.replace(handled, reply=self._resync(batch, previous))
                return handled
        if decoded.command is None:
            assert decoded.error is not None
            return self._reject(batch, op, decoded, decoded.error)
        try:
            outcome = self._apply(batch, decoded.command)
        except ProtocolError as exc:
            return self._reject(batch, op, decoded, exc)
        data = {"data": outcome.reply_data} if outcome.reply_data is not None else {}
        reply = stored = self._result(op, decoded, code=200, msg="", **data)
        if op == "sync":  # D12: the list now; the reply table keeps the envelope only
            reply = splice_data(stored, self._wire_list(batch.strategies))
        batch.add(
            CommitEntry(
                reply=StoredReply(reply_key(op, decoded.command.mid), op, stored, decoded.digest),
                upserts=[
                    StoredStrategy(s.id, s.ele_meter_id, s.device_type, s.document())
                    for s in outcome.upserts
                ],
                deletes=outcome.deletes,
                next_id=outcome.next_id,
            ),
            outcome,
        )
        return Handled(op=op, reply=reply, code=200, changed=outcome.changed, mid=decoded.mid)

    def _apply(self, batch: Batch, command: Envelope) -> rules.Outcome:
        held = quarantine_outcome(batch.quarantined, command)
        if held is not None:
            return held
        outcome = rules.apply_command(
            batch.strategies,
            command,
            site=self._site_view,
            next_id=batch.next_id,
            now=format_time_ns(self._clock_ns()),
        )
        return displacing(batch.quarantined, outcome)

    def _resync(self, batch: Batch, previous: StoredReply) -> bytes:
        """A repeated sync mid's reply (docs/protocol.md): the first reply's envelope, stamped
        now, with the strategies as they are now. The stored payload is that envelope with an
        empty ``data`` (a marker); a reply stored whole by an older agent is treated alike."""
        document = json.loads(previous.payload)
        document["data"] = []
        document["timestamp"] = self._clock_ns() // NS_PER_MS
        marker = codec.encode(RESULT_MODELS["sync"].model_validate(document))
        return splice_data(marker, self._wire_list(batch.strategies))

    def _result(self, op: str, decoded: Decoded, **fields: Any) -> bytes:
        ns = self._clock_ns()
        envelope = self._envelope(op, ns, decoded.trace_id)
        model = RESULT_MODELS[op]
        return codec.encode(
            model.model_validate({**envelope, "reply": decoded.mid or "", **fields})
        )

    def _reject(self, batch: Batch, op: str, decoded: Decoded, exc: ProtocolError) -> Handled:
        """A 400 (D3), stored under its mid when there is one so a repeat gets it again."""
        reply = self._error_reply(op, decoded, 400, str(exc))
        if decoded.mid is not None:
            batch.add(CommitEntry(reply=StoredReply(reply_key(op, decoded.mid), op, reply)), None)
        return Handled(op=op, reply=reply, code=400, changed=False, mid=decoded.mid)

    def _reused(self, op: str, decoded: Decoded) -> Handled:
        """A 400 for a mid already used on this op for different data; nothing is stored."""
        msg = (
            f"mid {decoded.mid} was already used for a different {op} command "
            "(same op, other data); send a new command under a new mid"
        )
        reply = self._error_reply(op, decoded, 400, msg)
        return Handled(op=op, reply=reply, code=400, changed=False, mid=decoded.mid)

    def _error_reply(self, op: str, decoded: Decoded, code: int, msg: str) -> bytes:
        return self._result(op, decoded, code=code, msg=msg)

    def _internal_error(self, op: str, decoded: Decoded, exc: Exception) -> Handled:
        """A 500 (D3): storage unavailable. Not stored, so a retry is processed anew."""
        log.error("storage failure while handling %s %s: %s", op, decoded.mid, redact(str(exc)))
        msg = (
            "internal error: storage unavailable"
            if isinstance(exc, StoreError)
            else ("internal error (the agent logged it)")
        )
        reply = self._error_reply(op, decoded, 500, msg)
        return Handled(op=op, reply=reply, code=500, changed=False, mid=decoded.mid)
