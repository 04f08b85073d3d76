"""The command service: one command in, one durable reply out (D2-D13).

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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

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
from gridguard.siteconfig import SiteConfig
from gridguard.store.base import StoredReply, StoredStrategy, StoreError, StrategyStore
from gridguard.strategy import rules
from gridguard.strategy.model import Strategy
from gridguard.strategy.report import to_wire

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
        self._site_view = rules.SiteView({m.id: m.per_phase for m in site.meters})

    async def load(self) -> None:
        """Read the stored strategies (at start, after migrations)."""
        rows = await self._store.list_strategies()
        self._strategies = {row.id: Strategy.from_document(row.document) for row in rows}
        self._next_id = await self._store.next_id()

    def set_live_view(self, live: LiveView) -> None:
        self._live = live

    @property
    def strategies(self) -> list[Strategy]:
        """The stored strategies in id order."""
        return [self._strategies[k] for k in sorted(self._strategies)]

    def _now(self) -> tuple[int, datetime]:
        ns = self._clock_ns()
        return ns, datetime.fromtimestamp(ns / 1e9, tz=UTC)

    def list_post(self) -> bytes:
        """The list/post report (D13)."""
        ns, _ = self._now()
        return codec.encode(ListPost(**self._envelope("list", ns), data=self._wire_list()))

    def _wire_list(self) -> list[Any]:
        _, now = self._now()
        demand = self._live.dynamic_demand_kw()
        return [
            to_wire(s, site=self._site, now=now, dynamic_demand_kw=demand, online=self._live.online)
            for s in self.strategies
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
        started = time.perf_counter()
        handled = await self._handle(op, payload)
        elapsed_ms = (time.perf_counter() - started) * 1000
        log.info(
            json.dumps(
                {
                    "event": "command",
                    "mid": handled.mid,
                    "op": op,
                    "code": handled.code,
                    "ms": round(elapsed_ms, 3),
                    "duplicate": handled.duplicate,
                }
            )
        )
        return handled

    async def _handle(self, op: str, payload: bytes) -> Handled:
        try:
            command = codec.decode_command(
                op,
                payload,
                device_uid=self._site.device.uid,
                max_bytes=self._site.mqtt.max_payload_bytes,
            )
        except ProtocolError as exc:
            return await self._reject(op, exc, exc.mid, exc.trace_id)
        try:
            previous = await self._store.get_reply(reply_key(op, command.mid))
        except StoreError as exc:
            return self._internal_error(op, command.mid, command.trace_id, exc)
        if previous is not None:  # D5: a repeated mid gets the stored reply, changes nothing
            return _replayed(op, previous, command.mid)
        try:
            outcome = self._apply(command)
        except ProtocolError as exc:
            return await self._reject(op, exc, command.mid, command.trace_id)
        return await self._commit(op, command, outcome)

    def _apply(self, command: Envelope) -> rules.Outcome:
        ns, _ = self._now()
        now = format_time_ns(ns)
        if isinstance(command, CreateCommand):
            return rules.apply_create(
                self._strategies, command.data, site=self._site_view, next_id=self._next_id, now=now
            )
        if isinstance(command, UpdateCommand):
            return rules.apply_update(self._strategies, command.data, site=self._site_view, now=now)
        if isinstance(command, DeleteCommand):
            return rules.apply_delete(self._strategies, command.data)
        if isinstance(command, UpdateAllCommand):
            return rules.apply_update_all(
                self._strategies, command.data, site=self._site_view, next_id=self._next_id, now=now
            )
        return rules.Outcome()  # sync: nothing changes (D12)

    def _result(self, op: str, reply_to: str | None, trace_id: str | None, **fields: Any) -> bytes:
        ns, _ = self._now()
        model = RESULT_MODELS[op]
        if op == "sync" and fields.get("code", 200) == 200:  # D12: data = the full list
            fields["data"] = self._wire_list()
        envelope = self._envelope(op, ns, trace_id)
        return codec.encode(model.model_validate({**envelope, "reply": reply_to or "", **fields}))

    async def _commit(self, op: str, command: Envelope, outcome: rules.Outcome) -> Handled:
        data = {"data": outcome.reply_data} if outcome.reply_data is not None else {}
        reply = self._result(op, command.mid, command.trace_id, code=200, msg="", **data)
        try:
            await self._store.commit(
                reply=StoredReply(reply_key(op, command.mid), op, reply),
                upserts=[
                    StoredStrategy(s.id, s.ele_meter_id, s.device_type, s.document())
                    for s in outcome.upserts
                ],
                deletes=outcome.deletes,
                next_id=outcome.next_id,
            )
        except StoreError as exc:
            return self._internal_error(op, command.mid, command.trace_id, exc)
        for strategy in outcome.upserts:
            self._strategies[strategy.id] = strategy
        for strategy_id in outcome.deletes:
            self._strategies.pop(strategy_id, None)
        if outcome.next_id is not None:
            self._next_id = outcome.next_id
        return Handled(op=op, reply=reply, code=200, changed=outcome.changed, mid=command.mid)

    async def _reject(
        self, op: str, exc: ProtocolError, mid: str | None, trace_id: str | None
    ) -> Handled:
        """A 400 (D3), stored under its mid when there is one so a repeat gets it again."""
        reply = self._result(op, mid, trace_id, code=400, msg=str(exc))
        if mid is not None:
            try:
                previous = await self._store.get_reply(reply_key(op, mid))
                if previous is not None:
                    return _replayed(op, previous, mid)
                await self._store.commit(reply=StoredReply(reply_key(op, mid), op, reply))
            except StoreError as store_exc:
                log.warning("could not store the 400 reply for %s: %s", mid, store_exc)
        return Handled(op=op, reply=reply, code=400, changed=False, mid=mid)

    def _internal_error(
        self, op: str, mid: str | None, trace_id: str | None, exc: Exception
    ) -> Handled:
        """A 500 (D3): storage unavailable. Not stored, so a retry is processed anew."""
        log.error("storage failure while handling %s %s: %s", op, mid, exc)
        reply = self._result(op, mid, trace_id, code=500, msg=f"internal error: {exc}")
        return Handled(op=op, reply=reply, code=500, changed=False, mid=mid)


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
