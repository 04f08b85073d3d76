"""The control cycle: read all -> decide -> clamp -> write -> publish, on an injected clock.

One :class:`ControlEngine` per site. Every cycle reads the meters and devices concurrently,
each read bounded by the period; a device that does not answer is marked offline and the
others carry on (D21). Each meter's :class:`MeterController` decides from the frozen view;
the setpoints (already clamped to each device's range) are written concurrently; the status
snapshot is replaced. New strategies take effect on the next cycle.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast
from zoneinfo import ZoneInfo

from gridguard.clock import Clock
from gridguard.control.controller import Decision, MeterController
from gridguard.control.explain import reason_line
from gridguard.control.params import ControlTuning, MeterGoals, StrategyParams, goals_for_meter
from gridguard.control.status import ControlEvent, ControlStatus, EventKind
from gridguard.control.status_build import build_status
from gridguard.control.store import StateStore
from gridguard.control.view import (
    ChargerRating,
    MeterRatings,
    MeterView,
    StorageRating,
)
from gridguard.devices.protocols import (
    ChargerReading,
    DeviceReading,
    MeterReading,
    PvReading,
    SetpointReadback,
    SiteDevices,
    StorageReading,
)
from gridguard.site.config import SiteConfig
from gridguard.vocab import DEVICE_KINDS, DeviceKind

log = logging.getLogger("gridguard.control")
T = TypeVar("T")
READBACK_TOLERANCE_KW = 0.5
READBACK_TOLERANCE_SHARE = 0.005
"""A held setpoint further than max(0.5 kW, 0.5 % of the rating) from the one written was
changed by someone else (registers hold 0.1 kW or 0.1 %: rounding stays well inside)."""
OnEvent = Callable[[ControlEvent], None]
DECIDE_SLICE = 8
"""Meters decided between two chances for other tasks (the agent's commands) to run: one
meter's decision and explanation take ~75 us, so 100 meters in one go held the loop ~7 ms."""


def meter_ratings(site: SiteConfig, meter_id: int) -> MeterRatings:
    """Static ratings of the devices behind one meter, in configuration order."""
    branch = site.topology.branch(meter_id)
    if branch is None:
        return MeterRatings(storage=(), chargers=())
    return MeterRatings(
        storage=tuple(
            StorageRating(s.rated_kw, s.capacity_kwh, s.soc_min_pct, s.soc_max_pct, s.efficiency)
            for s in branch.storage
        ),
        chargers=tuple(ChargerRating(c.rated_kw, c.min_kw, c.priority) for c in branch.chargers),
    )


def _offline(kind: DeviceKind, last: DeviceReading | None) -> DeviceReading:
    """An offline device's reading: its last known output, no headroom (D21)."""
    power_kw = last.power_kw if last else 0.0
    if kind == "storage":
        soc_pct = last.soc_pct if isinstance(last, StorageReading) else 0.0
        return StorageReading(power_kw, soc_pct, 0.0, 0.0, online=False)
    if kind == "pv":
        pv = last if isinstance(last, PvReading) else None
        return PvReading(
            power_kw, pv.limit_kw if pv else 0.0, pv.rated_kw if pv else 0.0, online=False
        )
    limit_kw = last.limit_kw if isinstance(last, ChargerReading) else 0.0
    return ChargerReading(power_kw, limit_kw, connected=False, online=False)


class ControlEngine:
    def __init__(
        self,
        site: SiteConfig,
        devices: SiteDevices,
        clock: Clock,
        state_store: StateStore,
        on_event: OnEvent,
        *,
        tuning: ControlTuning | None = None,
    ) -> None:
        self.site = site
        self.devices = devices
        self.clock = clock
        self.store = state_store
        self.on_event = on_event
        zone = ZoneInfo(site.site.time_zone)
        self.controllers = {
            m.id: MeterController(
                ratings=meter_ratings(site, m.id),
                config=site.control,
                tuning=tuning or ControlTuning(),
                zone=zone,
            )
            for m in site.meters
        }
        self._strategies: list[StrategyParams] = []
        self._goals: dict[int, MeterGoals] = {m: goals_for_meter([], m) for m in self.controllers}
        self._pending: list[StrategyParams] | None = None
        self._by_meter: dict[int, list[StrategyParams]] = {}
        self._last: dict[tuple[DeviceKind, int], DeviceReading] = {}
        self._online: dict[tuple[DeviceKind, int], bool] = {}
        self._setpoints: dict[tuple[DeviceKind, int], float] = {}
        self._overridden: set[tuple[DeviceKind, int]] = set()
        self._reasons: dict[int, str] = {}
        self._rated_kw = {
            ref.key: dev.rated_kw
            for branch in site.topology
            for kind in DEVICE_KINDS
            for ref, dev in zip(branch.refs(kind), branch.of(kind), strict=True)
        }
        self._next_readback_s: float | None = None
        self._failsafe: dict[int, bool] = {}
        self._saved_step: dict[int, int] = {}
        self._loaded = False
        self._status = ControlStatus()
        self._cycle = 0

    def set_strategies(self, strategies: list[StrategyParams]) -> None:
        """Replace the strategies; they take effect on the next cycle."""
        self._pending = list(strategies)

    def status(self) -> ControlStatus:
        """The snapshot of the last cycle."""
        return self._status

    def dynamic_demand_kw(self, meter_id: int) -> int:
        """The month's highest demand at ``meter_id`` in integer kW (D18); 0 if unknown."""
        controller = self.controllers.get(meter_id)
        return round(controller.dynamic_demand_kw()) if controller else 0

    async def run(self, stop_event: asyncio.Event) -> None:
        """Cycle every ``period_s`` on the clock until ``stop_event`` is set."""
        period = self.site.control.period_s
        next_s = self.clock.monotonic_s()
        while not stop_event.is_set():
            try:
                await self.run_cycle()
            except Exception as exc:  # noqa: BLE001 - one bad cycle must not stop control
                self._emit("error", f"control cycle failed: {exc!r}")
            next_s += period
            delay = next_s - self.clock.monotonic_s()
            if delay < 0.0:  # overran: start again from now, do not try to catch up
                next_s = self.clock.monotonic_s()
                delay = 0.0
            await self.clock.sleep(delay)

    async def run_cycle(self) -> None:
        """One cycle: read all -> decide -> clamp -> write -> publish."""
        if not self._loaded:
            await self._load()
        if self._pending is not None:
            self._strategies, self._pending = self._pending, None
            self._regoal()
        views = await self._read_all()
        mono_s, now = self.clock.monotonic_s(), self.clock.now()
        decisions: dict[int, Decision] = {}
        reasons: dict[int, str] = {}
        for index, (meter_id, controller) in enumerate(self.controllers.items()):
            if index and index % DECIDE_SLICE == 0:
                await asyncio.sleep(0)  # a large site's decisions leave the loop free between
            view, goals = views[meter_id], self._goals[meter_id]
            decision = controller.decide(view, goals, mono_s, now.timestamp())
            decisions[meter_id] = decision
            self._note_failsafe(meter_id, decision.failsafe)
            for kind, message in decision.explain.notes:
                self._emit(cast("EventKind", kind), message, meter_id=meter_id)
            reasons[meter_id] = reason_line(view, goals, decision)
            self._note_reason(meter_id, reasons[meter_id])
        if self.site.control.mode == "observe":
            self._setpoints.update(_commanded(self.site, decisions))
        else:
            await self._readback_due(mono_s)
            await self._write_all(decisions)
        await self._persist()
        self._cycle += 1
        self._status = build_status(
            self.site, views, decisions, self._setpoints, at=now, cycle=self._cycle, reasons=reasons
        ).model_copy(update={"mode": self.site.control.mode})

    def _regoal(self) -> None:
        """Goals anew for the meters whose strategies changed only (O(strategies + meters))."""
        by_meter: dict[int, list[StrategyParams]] = {}
        for strategy in self._strategies:
            by_meter.setdefault(strategy.meter_id, []).append(strategy)
        for meter_id in self.controllers:
            mine = by_meter.get(meter_id, [])
            if mine != self._by_meter.get(meter_id, []):
                self._goals[meter_id] = goals_for_meter(mine, meter_id)
        self._by_meter = by_meter

    async def _bounded(self, call: Awaitable[T]) -> T | None:
        try:
            async with asyncio.timeout(self.site.control.period_s):  # no extra task per call
                return await call
        except Exception:  # noqa: BLE001 - a device that fails is offline, the rest carry on (D21)
            return None

    async def _read_all(self) -> dict[int, MeterView]:
        d = self.devices
        meter_ids = [m for m in self.controllers if m in d.meters]
        keys = d.keys()
        meter_results, device_results = await asyncio.gather(
            asyncio.gather(*(self._bounded(d.meters[m].read()) for m in meter_ids)),
            asyncio.gather(*(self._bounded(d.read(k)) for k in keys)),
        )
        meters: dict[int, MeterReading | None] = dict(zip(meter_ids, meter_results, strict=True))
        readings: dict[tuple[DeviceKind, int], DeviceReading] = {}
        for key, reading in zip(keys, device_results, strict=True):
            online = reading is not None and reading.online
            self._note_online(key, online)
            if reading is not None and online:
                readings[key] = self._last[key] = reading
            else:
                readings[key] = _offline(key[0], self._last.get(key))
        return {m: self._view(m, meters.get(m), readings) for m in self.controllers}

    def _view(
        self,
        meter_id: int,
        meter: MeterReading | None,
        readings: dict[tuple[DeviceKind, int], DeviceReading],
    ) -> MeterView:
        branch = self.site.topology.by_meter[meter_id]

        def mine(kind: DeviceKind) -> tuple[Any, ...]:  # the kind's own reading type
            return tuple(
                readings[r.key] if r.key in readings else _offline(kind, None)
                for r in branch.refs(kind)
            )

        return MeterView(
            meter=meter or MeterReading(0.0, None, valid=False),
            storage=mine("storage"),
            pv=mine("pv"),
            chargers=mine("charger"),
        )

    async def _readback_due(self, mono_s: float) -> None:
        """Every ``readback_interval_s``, read back what we wrote: another master? (event)"""
        interval_s = self.site.control.readback_interval_s
        if interval_s <= 0 or not self._setpoints:
            return
        if self._next_readback_s is None:  # first check one interval after the first write
            self._next_readback_s = mono_s + interval_s
        if mono_s < self._next_readback_s:
            return
        self._next_readback_s = mono_s + interval_s
        keys = [k for k in self._setpoints if k[1] in self.devices.of(k[0])]
        held = await asyncio.gather(*(self._bounded(self._read_setpoint(k)) for k in keys))
        for key, value in zip(keys, held, strict=True):
            self._note_readback(key, self._setpoints[key], value)

    async def _read_setpoint(self, key: tuple[DeviceKind, int]) -> float | None:
        device = self.devices.of(key[0])[key[1]]
        if not isinstance(device, SetpointReadback):
            return None
        return await device.read_setpoint_kw()

    def _note_readback(
        self, key: tuple[DeviceKind, int], written_kw: float, held_kw: float | None
    ) -> None:
        if held_kw is None:
            return
        rated_kw = self._rated_kw.get(key, 0.0)
        tolerance_kw = max(READBACK_TOLERANCE_KW, READBACK_TOLERANCE_SHARE * rated_kw)
        moved = abs(held_kw - written_kw) > tolerance_kw
        if moved and key not in self._overridden:
            self._emit(
                "setpoint_overridden",
                f"{key[0]} {key[1]}: setpoint changed under us: wrote {written_kw:.1f} kW, "
                f"device holds {held_kw:.1f} kW (another Modbus master on the bus?)",
                device=key,
            )
        if moved:
            self._overridden.add(key)
        else:
            self._overridden.discard(key)

    async def _write_all(self, decisions: dict[int, Decision]) -> None:
        writes = [
            (key, value, self.devices.write(key, value))
            for key, value in _commanded(self.site, decisions).items()
            if key[1] in self.devices.of(key[0])
        ]
        results = await asyncio.gather(*(self._bounded(_done(call)) for _, _, call in writes))
        for (key, value, _), ok in zip(writes, results, strict=True):
            if ok:
                self._setpoints[key] = value
            else:
                self._note_online(key, online=False)

    def _note_online(self, key: tuple[DeviceKind, int], online: bool) -> None:
        was = self._online.get(key, True)
        self._online[key] = online
        if was != online:
            kind: EventKind = "device_online" if online else "device_offline"
            state = "back online" if online else "offline (running_status 2)"
            self._emit(kind, f"{key[0]} {key[1]} is {state}", device=key)

    def _note_reason(self, meter_id: int, reason: str) -> None:
        """A debug line whenever a meter's explanation changes (not every cycle)."""
        if self._reasons.get(meter_id) != reason:
            self._reasons[meter_id] = reason
            log.debug("meter %s: %s", meter_id, reason)

    def _note_failsafe(self, meter_id: int, failsafe: bool) -> None:
        if self._failsafe.get(meter_id, False) == failsafe:
            return
        self._failsafe[meter_id] = failsafe
        if failsafe:
            self._emit(
                "failsafe_on",
                f"meter {meter_id} silent for "
                f"{self.site.control.meter_timeout_s} s: fail-safe setpoints (D21)",
                meter_id=meter_id,
            )
        else:
            self._emit(
                "failsafe_off",
                f"meter {meter_id} reads again: normal control resumes",
                meter_id=meter_id,
            )

    def _emit(
        self,
        kind: EventKind,
        message: str,
        *,
        meter_id: int | None = None,
        device: tuple[DeviceKind, int] | None = None,
    ) -> None:
        self.on_event(
            ControlEvent(
                kind=kind, at=self.clock.now(), message=message, meter_id=meter_id, device=device
            )
        )

    async def _load(self) -> None:
        self._loaded = True
        epoch_s = self.clock.now().timestamp()
        for meter_id, controller in self.controllers.items():
            state = await self.store.load(f"control/meter/{meter_id}")
            if state is not None:
                controller.restore_state(state, epoch_s)

    async def _persist(self) -> None:
        """Each meter's state once per demand step; every meter in one transaction."""
        due = {
            meter_id: controller
            for meter_id, controller in self.controllers.items()
            if self._saved_step.get(meter_id) != controller.demand.step
        }
        if not due:
            return
        await self.store.save_many(
            {f"control/meter/{m}": controller.export_state() for m, controller in due.items()}
        )
        for meter_id, controller in due.items():
            self._saved_step[meter_id] = controller.demand.step


def _commanded(
    site: SiteConfig, decisions: dict[int, Decision]
) -> dict[tuple[DeviceKind, int], float]:
    """Every setpoint the decisions write (``None`` entries are left out), by device."""
    out: dict[tuple[DeviceKind, int], float] = {}
    for meter_id, decision in decisions.items():
        branch = site.topology.by_meter[meter_id]
        cmd = decision.command
        values: dict[DeviceKind, tuple[float | None, ...]] = {
            "storage": cmd.storage_kw,
            "pv": cmd.pv_limit_kw,
            "charger": cmd.charger_limit_kw,
        }
        for kind, kind_values in values.items():
            for ref, value in zip(branch.refs(kind), kind_values, strict=True):
                if value is not None:
                    out[ref.key] = value
    return out


async def _done(call: Awaitable[None]) -> bool:
    await call
    return True
