"""The control cycle: read all -> decide -> clamp -> write -> publish, on an injected clock.

One :class:`ControlEngine` per site. Every cycle reads the meters and devices concurrently,
each read bounded by the period; a device that does not answer is marked offline and the
others carry on (D21). Each meter's :class:`MeterController` decides from the frozen view;
the setpoints (already clamped to each device's range) are written concurrently; the status
snapshot is replaced. New strategies take effect on the next cycle.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from gridguard.clock import Clock
from gridguard.control.controller import Decision, MeterController
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
    MeterReading,
    PvReading,
    SiteDevices,
    StorageReading,
)
from gridguard.site.config import SiteConfig
from gridguard.vocab import DeviceKind

T = TypeVar("T")
OnEvent = Callable[[ControlEvent], None]


def meter_ratings(site: SiteConfig, meter_id: int) -> MeterRatings:
    """Static ratings of the devices behind one meter, in configuration order."""
    return MeterRatings(
        storage=tuple(
            StorageRating(s.rated_kw, s.capacity_kwh, s.soc_min_pct, s.soc_max_pct, s.efficiency)
            for s in site.storage
            if s.meter_id == meter_id
        ),
        chargers=tuple(
            ChargerRating(c.rated_kw, c.min_kw, c.priority)
            for c in site.chargers
            if c.meter_id == meter_id
        ),
    )


def _offline(kind: DeviceKind, last: Any) -> Any:
    if kind == "storage":
        r: StorageReading | None = last
        return StorageReading(
            r.power_kw if r else 0.0, r.soc_pct if r else 0.0, 0.0, 0.0, online=False
        )
    if kind == "pv":
        p: PvReading | None = last
        return PvReading(
            p.power_kw if p else 0.0,
            p.limit_kw if p else 0.0,
            p.rated_kw if p else 0.0,
            online=False,
        )
    c: ChargerReading | None = last
    return ChargerReading(
        c.power_kw if c else 0.0, c.limit_kw if c else 0.0, connected=False, online=False
    )


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
        self._last: dict[tuple[DeviceKind, int], Any] = {}
        self._online: dict[tuple[DeviceKind, int], bool] = {}
        self._setpoints: dict[tuple[DeviceKind, int], float] = {}
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
            self._goals = {m: goals_for_meter(self._strategies, m) for m in self.controllers}
        views = await self._read_all()
        mono_s, now = self.clock.monotonic_s(), self.clock.now()
        decisions: dict[int, Decision] = {}
        for meter_id, controller in self.controllers.items():
            decision = controller.decide(
                views[meter_id], self._goals[meter_id], mono_s, now.timestamp()
            )
            decisions[meter_id] = decision
            self._note_failsafe(meter_id, decision.failsafe)
        await self._write_all(decisions)
        await self._persist()
        self._cycle += 1
        self._status = build_status(
            self.site, views, decisions, self._setpoints, at=now, cycle=self._cycle
        )

    async def _bounded(self, call: Awaitable[T]) -> T | None:
        try:
            return await asyncio.wait_for(call, timeout=self.site.control.period_s)
        except Exception:  # noqa: BLE001 - a device that fails is offline, the rest carry on (D21)
            return None

    def _device(self, key: tuple[DeviceKind, int]) -> Any:
        d = self.devices
        groups: dict[DeviceKind, dict[int, Any]] = {
            "storage": d.storage,
            "pv": d.pv,
            "charger": d.chargers,
        }
        return groups[key[0]][key[1]]

    async def _read_all(self) -> dict[int, MeterView]:
        d = self.devices
        meter_ids = [m for m in self.controllers if m in d.meters]
        keys: list[tuple[DeviceKind, int]] = [
            *(("storage", i) for i in d.storage),
            *(("pv", i) for i in d.pv),
            *(("charger", i) for i in d.chargers),
        ]
        meter_results, device_results = await asyncio.gather(
            asyncio.gather(*(self._bounded(d.meters[m].read()) for m in meter_ids)),
            asyncio.gather(*(self._bounded(self._device(k).read()) for k in keys)),
        )
        meters: dict[int, MeterReading | None] = dict(zip(meter_ids, meter_results, strict=True))
        readings: dict[tuple[DeviceKind, int], Any] = {}
        for key, reading in zip(keys, device_results, strict=True):
            online = reading is not None and bool(reading.online)
            self._note_online(key, online)
            readings[key] = reading if online else _offline(key[0], self._last.get(key))
            if online:
                self._last[key] = reading
        return {m: self._view(m, meters.get(m), readings) for m in self.controllers}

    def _view(
        self, meter_id: int, meter: MeterReading | None, readings: dict[Any, Any]
    ) -> MeterView:
        s = self.site

        def mine(kind: DeviceKind, configs: list[Any]) -> tuple[Any, ...]:
            return tuple(
                readings[(kind, c.id)] if (kind, c.id) in readings else _offline(kind, None)
                for c in configs
                if c.meter_id == meter_id
            )

        return MeterView(
            meter=meter or MeterReading(0.0, None, valid=False),
            storage=mine("storage", s.storage),
            pv=mine("pv", s.pv),
            chargers=mine("charger", s.chargers),
        )

    async def _write_all(self, decisions: dict[int, Decision]) -> None:
        writes: list[tuple[tuple[DeviceKind, int], float, Awaitable[None]]] = []
        d, s = self.devices, self.site
        for meter_id, decision in decisions.items():
            cmd = decision.command
            groups: list[tuple[DeviceKind, list[Any], tuple[float | None, ...], dict[int, Any]]] = [
                ("storage", s.storage, cmd.storage_kw, d.storage),
                ("pv", s.pv, cmd.pv_limit_kw, d.pv),
                ("charger", s.chargers, cmd.charger_limit_kw, d.chargers),
            ]
            for kind, configs, values, devs in groups:
                ids = [c.id for c in configs if c.meter_id == meter_id]
                for device_id, value in zip(ids, values, strict=True):
                    if value is None or device_id not in devs:
                        continue
                    dev = devs[device_id]
                    call = (
                        dev.write_power_kw(value)
                        if kind == "storage"
                        else dev.write_limit_kw(value)
                    )
                    writes.append(((kind, device_id), value, call))
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
        for meter_id, controller in self.controllers.items():
            step = controller.demand.step
            if self._saved_step.get(meter_id) != step:
                self._saved_step[meter_id] = step
                await self.store.save(f"control/meter/{meter_id}", controller.export_state())


async def _done(call: Awaitable[None]) -> bool:
    await call
    return True
