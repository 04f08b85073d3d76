"""The command service: one command in, one durable reply out (D2-D13).

It owns the result codes (D3: 200, 400 for anything a peer sent, 500 for a store failure),
idempotency (D5: a repeated (op, mid) gets its stored reply) and sync's full list (D12).

``handle(op, payload)`` never raises for anything a peer sent: bad input becomes a 400 reply,
a store failure a 500. A command's changes and its reply are committed in one transaction
*before* the reply is returned for publishing, and the in-memory view is updated only after
the commit succeeded, so what the agent says and what it stores never diverge.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from gridguard.edge.report import to_wire
from gridguard.protocol import codec
from gridguard.protocol.errors import ProtocolError
from gridguard.protocol.models import (
    RESULT_MODELS,
    CreateCommand,
    DeleteCommand,
    Envelope,
    ListPost,
    UpdateAllCommand,
    UpdateCommand,
    message_type,
)
from gridguard.protocol.timefmt import format_time_ns
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


class LiveView(Protocol):
    """Live values a report carries: demand per meter (D18) and who is online."""

    def dynamic_demand_kw(self) -> Mapping[int, int]: ...

    def online(self, kind: str, device_id: int) -> bool: ...


class StaticLiveView:
    """No control engine: no demand recorded yet, every device taken as online."""

    def dynamic_demand_kw(self) -> Mapping[int, int]:
        return {}

    def online(self, kind: str, device_id: int) -> bool:  # noqa: ARG002
        return True


@dataclass(frozen=True, slots=True)
class Handled:
    """What handling one command produced."""

    op: str
    reply: bytes
    code: int
    changed: bool
    mid: str | None
    duplicate: bool = False


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
        self._next_id = 1
        self._reply_keys: set[str] = set()
        self._reload_keys_at = 2 * DEFAULT_KEEP_REPLIES
        self._site_view = rules.SiteView({m.id: m.per_phase for m in site.meters})

    async def load(self) -> None:
        """Read the stored strategies (at start, after migrations)."""
        rows = await self._store.list_strategies()
        self._strategies = {row.id: Strategy.from_document(row.document) for row in rows}
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
    def strategies(self) -> list[Strategy]:
        """The stored strategies in id order."""
        return [self._strategies[k] for k in sorted(self._strategies)]

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock_ns() / 1e9, tz=UTC)

    def list_post(self) -> bytes:
        """The list/post report (D13)."""
        ns = self._clock_ns()
        data = self._wire_list(self._strategies)
        return codec.encode(ListPost(**self._envelope("list", ns), data=data))

    def _wire_list(self, strategies: Mapping[int, Strategy]) -> list[Any]:
        now = self._now()
        demand = self._live.dynamic_demand_kw()
        return [
            to_wire(
                strategies[k],
                site=self._site,
                now=now,
                dynamic_demand_kw=demand,
                online=self._live.online,
            )
            for k in sorted(strategies)
        ]

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
        are the replies returned for publishing. If the commit fails, every command that was
        not a replay gets a 500 and nothing changes.
        """
        started = time.perf_counter()
        batch = _Batch(dict(self._strategies), self._next_id)
        decoded = [self._decode(op, payload) for op, payload in commands]
        keys = [reply_key(op, d.mid) for (op, _), d in zip(commands, decoded, strict=True) if d.mid]
        keys = [k for k in keys if k in self._reply_keys]
        try:
            batch.stored = await self._store.get_replies(keys) if keys else {}
        except StoreError as exc:
            return [
                self._internal_error(op, d.mid, d.trace_id, exc)
                for (op, _), d in zip(commands, decoded, strict=True)
            ]
        handled = [self._step(batch, op, d) for (op, _), d in zip(commands, decoded, strict=True)]
        if batch.entries:
            try:
                await self._store.commit_batch(batch.entries)
            except StoreError as exc:
                handled = [
                    h if h.duplicate else self._internal_error(h.op, h.mid, d.trace_id, exc)
                    for h, d in zip(handled, decoded, strict=True)
                ]
                self._log(handled, started)
                return handled
        self._strategies, self._next_id = batch.strategies, batch.next_id
        self._reply_keys.update(batch.fresh)
        if len(self._reply_keys) > self._reload_keys_at:
            await self._reload_reply_keys()
        self._log(handled, started)
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

    def _decode(self, op: str, payload: bytes) -> _Decoded:
        try:
            command = codec.decode_command(
                op,
                payload,
                device_uid=self._site.device.uid,
                max_bytes=self._site.mqtt.max_payload_bytes,
            )
        except ProtocolError as exc:
            return _Decoded(None, exc, exc.mid, exc.trace_id)
        return _Decoded(command, None, command.mid, command.trace_id)

    def _step(self, batch: _Batch, op: str, decoded: _Decoded) -> Handled:
        """One command against the batch's working state."""
        key = reply_key(op, decoded.mid) if decoded.mid else None
        if key is not None:
            previous = batch.replayable(key)
            if previous is not None:  # D5: a repeated mid gets the stored reply
                return _replayed(op, previous, decoded.mid or "")
        if decoded.command is None:
            assert decoded.error is not None
            return self._reject(batch, op, decoded, decoded.error)
        try:
            outcome = self._apply(batch, decoded.command)
        except ProtocolError as exc:
            return self._reject(batch, op, decoded, exc)
        data = {"data": outcome.reply_data} if outcome.reply_data is not None else {}
        reply = self._result(op, decoded, batch, code=200, msg="", **data)
        batch.add(
            CommitEntry(
                reply=StoredReply(reply_key(op, decoded.command.mid), op, reply),
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

    def _apply(self, batch: _Batch, command: Envelope) -> rules.Outcome:
        now = format_time_ns(self._clock_ns())
        site, current = self._site_view, batch.strategies
        if isinstance(command, CreateCommand):
            return rules.apply_create(
                current, command.data, site=site, next_id=batch.next_id, now=now
            )
        if isinstance(command, UpdateCommand):
            return rules.apply_update(current, command.data, site=site, now=now)
        if isinstance(command, DeleteCommand):
            return rules.apply_delete(current, command.data)
        if isinstance(command, UpdateAllCommand):
            return rules.apply_update_all(
                current, command.data, site=site, next_id=batch.next_id, now=now
            )
        return rules.Outcome()  # sync: nothing changes (D12)

    def _result(self, op: str, decoded: _Decoded, batch: _Batch | None, **fields: Any) -> bytes:
        ns = self._clock_ns()
        if op == "sync" and fields.get("code") == 200 and batch is not None:  # D12
            fields["data"] = self._wire_list(batch.strategies)
        envelope = self._envelope(op, ns, decoded.trace_id)
        model = RESULT_MODELS[op]
        return codec.encode(
            model.model_validate({**envelope, "reply": decoded.mid or "", **fields})
        )

    def _reject(self, batch: _Batch, op: str, decoded: _Decoded, exc: ProtocolError) -> Handled:
        """A 400 (D3), stored under its mid when there is one so a repeat gets it again."""
        reply = self._result(op, decoded, None, code=400, msg=str(exc))
        if decoded.mid is not None:
            batch.add(CommitEntry(reply=StoredReply(reply_key(op, decoded.mid), op, reply)), None)
        return Handled(op=op, reply=reply, code=400, changed=False, mid=decoded.mid)

    def _internal_error(
        self, op: str, mid: str | None, trace_id: str | None, exc: Exception
    ) -> Handled:
        """A 500 (D3): storage unavailable. Not stored, so a retry is processed anew."""
        log.error("storage failure while handling %s %s: %s", op, mid, exc)
        decoded = _Decoded(None, None, mid, trace_id)
        reply = self._result(op, decoded, None, code=500, msg=f"internal error: {exc}")
        return Handled(op=op, reply=reply, code=500, changed=False, mid=mid)


@dataclass(frozen=True, slots=True)
class _Decoded:
    command: Envelope | None
    error: ProtocolError | None
    mid: str | None
    trace_id: str | None


@dataclass(slots=True)
class _Batch:
    """Working state of one batch: strategies and id counter as the commands change them."""

    strategies: dict[int, Strategy]
    next_id: int
    stored: dict[str, StoredReply] = field(default_factory=dict)
    entries: list[CommitEntry] = field(default_factory=list)
    fresh: dict[str, StoredReply] = field(default_factory=dict)

    def replayable(self, key: str) -> StoredReply | None:
        return self.fresh.get(key) or self.stored.get(key)

    def add(self, entry: CommitEntry, outcome: rules.Outcome | None) -> None:
        self.entries.append(entry)
        self.fresh[entry.reply.key] = entry.reply
        if outcome is None:
            return
        for strategy in outcome.upserts:
            self.strategies[strategy.id] = strategy
        for strategy_id in outcome.deletes:
            self.strategies.pop(strategy_id, None)
        if outcome.next_id is not None:
            self.next_id = outcome.next_id


def reply_key(op: str, mid: str) -> str:
    """The idempotency key of a command (D5): its op and mid.

    A redelivery arrives on the same command topic with the same mid. The spec's own examples
    reuse one mid for create, update, delete and update_all, and each must be answered on its
    own, so the key includes the op.
    """
    return f"{op}/{mid}"


def _replayed(op: str, previous: StoredReply, mid: str) -> Handled:
    code = _code(previous.payload)
    return Handled(op=op, reply=previous.payload, code=code, changed=False, mid=mid, duplicate=True)


def _code(payload: bytes) -> int:
    try:
        value = json.loads(payload).get("code", 200)
    except (ValueError, AttributeError):
        return 200
    return int(value) if isinstance(value, int) else 200
