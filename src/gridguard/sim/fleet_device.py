"""One simulated EMS of the fleet: the strategy protocol as a state machine, no I/O.

``handle(op, payload, now_ns)`` answers one command exactly as the protocol says (D2-D13): the
pure rules of ``gridguard.strategy.rules`` decide, a 400 names the field and the rule, and a
repeated (op, mid) gets the identical stored reply and changes nothing (D5). Replies are kept
in memory for the last :data:`KEEP_REPLIES` commands per device (a redelivery comes within
seconds; 10,000 devices must fit in 100 MB): a simulator, not a store.
``list_post`` and ``status_post`` build the two reports; the fleet does the publishing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from gridguard.protocol import codec
from gridguard.protocol.errors import ProtocolError
from gridguard.protocol.models import (
    RESULT_MODELS,
    Envelope,
    ListPost,
    StreamingOverDemand,
    message_type,
)
from gridguard.protocol.timefmt import format_time_ns
from gridguard.sim.fleet_plant import MeterState, step_meter
from gridguard.sim.fleet_site import SiteShape
from gridguard.sim.fleet_status import device_json, meter_json, status_json
from gridguard.strategy import rules
from gridguard.strategy.model import Strategy, site_month

KEEP_REPLIES = 8
NS_PER_MS = 1_000_000


@dataclass(frozen=True, slots=True)
class Answer:
    """The reply to publish on ``{op}/result``, and whether list/post must follow."""

    reply: bytes
    code: int
    changed: bool
    duplicate: bool = False


class SimDevice:
    """The protocol state of one simulated EMS: its strategies and its recent replies."""

    __slots__ = ("_meters", "_next_id", "_replies", "phase", "scale", "site", "strategies", "uid")

    def __init__(
        self, uid: str, site: SiteShape, *, scale: float = 1.0, phase: float = 0.0
    ) -> None:
        self.uid = uid
        self.site = site
        self.scale = scale
        """Load of this EMS relative to its shape's (so a fleet's values differ)."""
        self.phase = phase
        """Where this EMS is in its daily curve, 0..1 (so they do not peak together)."""
        self.strategies: dict[int, Strategy] = {}
        self._next_id = 1
        self._replies: dict[str, Answer] | None = None
        self._meters: dict[int, MeterState] | None = None

    # --- commands -----------------------------------------------------------------------------

    def handle(self, op: str, payload: bytes, now_ns: int) -> Answer:
        """Answer one command received on ``{op}/command``; never raises for peer input."""
        command: Envelope | None = None
        mid: str | None
        try:
            command = codec.decode_command(op, payload, device_uid=self.uid)
            mid, trace_id = command.mid, command.trace_id
        except ProtocolError as exc:
            mid, trace_id, error = exc.mid, exc.trace_id, exc
        previous = self._replies.get(f"{op}/{mid}") if self._replies and mid else None
        if previous is not None:  # D5: a repeated mid gets the stored reply
            return Answer(previous.reply, previous.code, changed=False, duplicate=True)
        if command is not None:
            try:
                outcome = self._apply(command, now_ns)
            except ProtocolError as exc:
                error = exc
            else:
                return self._accept(op, command, outcome, now_ns)
        reply = self._result(op, mid, trace_id, now_ns, code=400, msg=str(error))
        return self._remember(op, mid, Answer(reply, 400, changed=False))

    def _accept(self, op: str, command: Envelope, outcome: rules.Outcome, now_ns: int) -> Answer:
        self._commit(outcome)
        extra: dict[str, Any] = {}
        if op == "sync":  # D12: the full list
            extra["data"] = self.wire_list(now_ns)
        elif outcome.reply_data is not None:
            extra["data"] = outcome.reply_data
        reply = self._result(op, command.mid, command.trace_id, now_ns, code=200, msg="", **extra)
        return self._remember(op, command.mid, Answer(reply, 200, changed=outcome.changed))

    def _apply(self, command: Envelope, now_ns: int) -> rules.Outcome:
        return rules.apply_command(
            self.strategies,
            command,
            site=self.site.view,
            next_id=self._next_id,
            now=format_time_ns(now_ns),
        )

    def _commit(self, outcome: rules.Outcome) -> None:
        for strategy in outcome.upserts:
            self.strategies[strategy.id] = _shared(strategy)
        for strategy_id in outcome.deletes:
            self.strategies.pop(strategy_id, None)
        if outcome.next_id is not None:
            self._next_id = outcome.next_id

    def _remember(self, op: str, mid: str | None, answer: Answer) -> Answer:
        if mid is not None:
            replies = self._replies if self._replies is not None else {}
            self._replies = replies
            replies[f"{op}/{mid}"] = answer
            if len(replies) > KEEP_REPLIES:  # dicts keep insertion order: the first is oldest
                del replies[next(iter(replies))]
        return answer

    def _envelope(self, op: str, now_ns: int, trace_id: str | None) -> dict[str, Any]:
        return {
            "mid": str(uuid.uuid4()),
            "type": message_type(op),
            "device_uid": self.uid,
            "timestamp": now_ns // NS_PER_MS,
            "trace_id": trace_id,
        }

    def _result(
        self, op: str, mid: str | None, trace_id: str | None, now_ns: int, **fields: Any
    ) -> bytes:
        document = {**self._envelope(op, now_ns, trace_id), "reply": mid or "", **fields}
        return codec.encode(RESULT_MODELS[op].model_validate(document))

    # --- reports ------------------------------------------------------------------------------

    def wire_list(self, now_ns: int) -> list[StreamingOverDemand]:
        """Every strategy fully populated, in id order (D13)."""
        month = _month(now_ns // (60 * 10**9), self.site.time_zone)
        return [self._wire(self.strategies[k], month) for k in sorted(self.strategies)]

    def _wire(self, s: Strategy, month: int) -> StreamingOverDemand:
        peak = self._meters[s.ele_meter_id].peak_kw if self._meters else 0.0
        return StreamingOverDemand(
            id=s.id,
            device_type=s.device_type,
            devices=list(self.site.wire_devices.get((s.ele_meter_id, s.device_type), ())),
            ele_meter_id=s.ele_meter_id,
            ele_meter=self.site.ele_meters[s.ele_meter_id],
            streaming_status=s.streaming_status,
            streaming_condition=s.streaming_condition,
            individual_phase_streaming_status=s.individual_phase_streaming_status,
            individual_phase_streaming_condition=s.individual_phase_streaming_condition,
            over_demand_status=s.over_demand_status,
            over_demand_condition=list(s.over_demand_condition),
            current_over_demand_condition=s.over_demand_condition[month - 1],
            dynamic_demand_status=s.dynamic_demand_status,
            dynamic_demand=round(peak),
            dynamic_demand_percentage=s.dynamic_demand_percentage,
            updated_by=s.updated_by,
            created_at=s.created_at,
            updated_at=s.updated_at,
        )

    def list_post(self, now_ns: int) -> bytes:
        """The list/post report (D13), retained by the fleet."""
        envelope = self._envelope("list", now_ns, None)
        return codec.encode(ListPost(**envelope, data=self.wire_list(now_ns)))

    def status_post(self, now_ns: int, dt_s: float) -> bytes:
        """The status/post report after advancing the toy plant by ``dt_s``."""
        t_s = now_ns / 1e9
        month = _month(int(t_s) // 60, self.site.time_zone)
        meters = self._meters if self._meters is not None else self._first_states(t_s, month)
        self._meters = meters
        meter_docs: list[str] = []
        device_docs: list[str] = []
        for shape in self.site.meters:
            bound = {k: s for k, s in self.strategies.items() if s.ele_meter_id == shape.id}
            state = meters[shape.id]
            step = step_meter(
                shape,
                bound,
                state,
                t_s=t_s,
                dt_s=dt_s,
                month=month,
                scale=self.scale,
                phase=self.phase,
            )
            meter_docs.append(meter_json(shape.id, step, state))
            device_docs.extend(device_json(shape, step, state))
        return status_json(self.uid, now_ns, meter_docs, device_docs)

    def _first_states(self, t_s: float, month: int) -> dict[int, MeterState]:
        states = {}
        for shape in self.site.meters:
            state = MeterState(demand_kw=0.0)
            step = step_meter(
                shape, {}, state, t_s=t_s, dt_s=0.0, month=month, scale=self.scale, phase=self.phase
            )
            state.demand_kw = state.peak_kw = step.grid_power_kw
            states[shape.id] = state
        return states


_CONDITIONS: dict[tuple[int, ...], tuple[int, ...]] = {}
MAX_SHARED_CONDITIONS = 4096


def _shared(strategy: Strategy) -> Strategy:
    """The strategy with its twelve monthly limits shared with every equal set already held.

    A fleet's strategies mostly carry the same few sets; twelve ints and a tuple of their own
    cost each device about 600 bytes, a third of what a strategy and its stored reply take.
    """
    months = strategy.over_demand_condition
    shared = _CONDITIONS.get(months)
    if shared is None:
        if len(_CONDITIONS) >= MAX_SHARED_CONDITIONS:
            return strategy
        shared = _CONDITIONS[months] = months
    return strategy if shared is months else replace(strategy, over_demand_condition=shared)


@lru_cache(maxsize=16)
def _month(epoch_minute: int, time_zone: str) -> int:
    """The site's month (D14) during one minute; cached, as thousands of reports share it."""
    return site_month(datetime.fromtimestamp(epoch_minute * 60, tz=UTC), time_zone)
