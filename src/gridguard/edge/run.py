"""Start-up of the edge agent: config with CLI overrides, store, service, agent."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gridguard.clock import SystemClock
from gridguard.control.engine import ControlEngine
from gridguard.control.params import ControlTuning
from gridguard.devices.factory import build_site_devices, close_site_devices
from gridguard.devices.protocols import SiteDevices
from gridguard.edge.agent import Controller, EdgeAgent
from gridguard.edge.control_link import EngineController, StoreStateAdapter, log_event
from gridguard.edge.service import CommandService
from gridguard.edge.stored import load_stored
from gridguard.redact import redact
from gridguard.site.config import ConfigError, SiteConfig, parse_site_config, read_site_file
from gridguard.store import make_store
from gridguard.store.base import StrategyStore
from gridguard.strategy.model import Strategy
from gridguard.vocab import ENABLED, DeviceClass

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from gridguard.edge.metrics import MetricsRecorder

log = logging.getLogger("gridguard.edge")


class MetricsError(OSError):
    """The metrics port cannot be listened on."""


@dataclass(frozen=True, slots=True)
class Overrides:
    """Command-line values that replace the file's (each also settable in the file)."""

    mqtt_url: str | None = None
    device_uid: str | None = None
    scheme: str | None = None
    product_key: str | None = None
    tenant: str | None = None
    prefix: str | None = None
    db: str | None = None

    def apply(self, data: dict[str, Any]) -> dict[str, Any]:
        out = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
        pairs = {
            "url": self.mqtt_url,
            "scheme": self.scheme,
            "product_key": self.product_key,
            "tenant": self.tenant,
            "prefix": self.prefix,
        }
        given = {k: v for k, v in pairs.items() if v is not None}
        if given:  # an empty [mqtt] would drop the default prefix
            mqtt = out.setdefault("mqtt", {})
            mqtt.update(given)
            if self.mqtt_url is not None:  # one broker given: it replaces a configured cluster
                mqtt.pop("urls", None)
        if self.device_uid is not None:
            out.setdefault("device", {})["uid"] = self.device_uid
        if self.db is not None:
            out.setdefault("store", {})["url"] = self.db
        return out


def load_config(path: Path, overrides: Overrides | None = None) -> SiteConfig:
    """Read the site file, apply overrides, validate; ConfigError names file, key and rule."""
    data, text = read_site_file(path)
    if overrides is not None:
        data = overrides.apply(data)
    return parse_site_config(data, str(path), text)


def build_controller(
    site: SiteConfig,
    store: StrategyStore,
    devices: SiteDevices,
    metrics: MetricsRecorder | None = None,
) -> EngineController:
    """The control engine on real time, keeping its demand meter in the agent's store."""
    tuning = ControlTuning(
        actuator_lag_s=site.control.actuator_lag_s,
        meter_delay_s=site.control.meter_delay_s,
        identify_meter_delay=site.control.identify_meter_delay,
        command_delay_s=site.control.command_delay_s,
        identify_command_delay=site.control.identify_command_delay,
    )
    engine = ControlEngine(
        site, devices, SystemClock(), StoreStateAdapter(store), log_event, tuning=tuning
    )
    return EngineController(site, engine, on_cycle=metrics.cycle if metrics else None)


@dataclass(frozen=True, slots=True)
class MetricsEndpoint:
    """Where ``/metrics`` is served (``edge run --metrics-port``)."""

    port: int
    host: str = "127.0.0.1"


async def run_agent(
    site: SiteConfig,
    stop: asyncio.Event,
    *,
    devices: SiteDevices | None = None,
    control: bool = True,
    freeze_heap: bool = False,
    metrics: MetricsEndpoint | None = None,
) -> None:
    """Open the store, load strategies, serve and control until ``stop`` is set.

    ``devices`` defaults to Modbus drivers for the site's configuration; ``control=False``
    serves the protocol only (no field I/O). ``freeze_heap`` (the agent's own process only)
    moves everything built at start-up out of the garbage collector's reach: a full collection
    over the ~100,000 objects of the loaded libraries took 66 ms on a 2-core box, a stall of
    the command and control loops; after ``gc.freeze()`` it scans only what came later.
    ``metrics`` serves Prometheus metrics there while the agent runs."""
    recorder, server = _serve_metrics(metrics)
    try:
        await _run_agent(
            site, stop, devices, control=control, freeze_heap=freeze_heap, metrics=recorder
        )
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()


def _serve_metrics(
    endpoint: MetricsEndpoint | None,
) -> tuple[MetricsRecorder | None, WSGIServer | None]:
    if endpoint is None:
        return None, None
    from gridguard.edge.metrics import MetricsRecorder  # noqa: PLC0415 (only when asked for)

    recorder = MetricsRecorder()
    try:
        server = recorder.serve(endpoint.port, endpoint.host)
    except OSError as exc:
        raise MetricsError(
            f"metrics: cannot listen on {endpoint.host}:{endpoint.port}: {exc.strerror}"
        ) from exc
    log.info("metrics on http://%s:%d/metrics", endpoint.host, endpoint.port)
    return recorder, server


async def _run_agent(
    site: SiteConfig,
    stop: asyncio.Event,
    devices: SiteDevices | None,
    *,
    control: bool,
    freeze_heap: bool,
    metrics: MetricsRecorder | None,
) -> None:
    store = make_store(site.store.url)
    await store.open()
    owned = devices is None and control
    if devices is None and control:
        devices = build_site_devices(site)
    try:
        service = CommandService(site=site, store=store)
        await service.load()
        log.info(
            "loaded %d strategies (%d quarantined) from %s",
            len(service.strategies),
            len(service.quarantined),
            redact(site.store.url),
        )
        controller: Controller | None = None
        if devices is not None:
            engine_controller = build_controller(site, store, devices, metrics)
            service.set_live_view(engine_controller)
            controller = engine_controller
        agent = EdgeAgent(site, service, controller=controller, metrics=metrics)
        if freeze_heap:
            gc.collect()
            gc.freeze()
        await agent.run(stop)
    finally:
        if owned and devices is not None:
            close_site_devices(devices)
        await store.close()


def serve(site: SiteConfig, metrics: MetricsEndpoint | None = None) -> None:
    """Blocking entry point of ``gridguard edge run``: stops cleanly on SIGINT/SIGTERM."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await run_agent(site, stop, freeze_heap=True, metrics=metrics)

    try:
        asyncio.run(main())
    except ConfigError as exc:  # retrying cannot fix it: exit, so a supervisor sees it
        log.critical("configuration error, exiting: %s", redact(str(exc)))
        raise SystemExit(2) from None


def _status(value: int, condition: int | None = None) -> str:
    if value != ENABLED:
        return "off"
    return "on" if condition is None else f"on ≥{condition} kW"


def strategy_rows(strategies: list[Strategy], time_zone: str) -> list[list[str]]:
    """Rows of the ``edge strategies`` table."""
    now = datetime.now(UTC)
    rows = [
        [
            "id",
            "meter",
            "class",
            "anti-backflow",
            "single-phase",
            "over-demand",
            "dynamic",
            "updated_at",
        ]
    ]
    for s in strategies:
        month_kw = s.current_over_demand_condition(now, time_zone)
        rows.append(
            [
                str(s.id),
                str(s.ele_meter_id),
                _class_label(s.device_type),
                _status(s.streaming_status, s.streaming_condition),
                _status(
                    s.individual_phase_streaming_status, s.individual_phase_streaming_condition
                ),
                "off" if s.over_demand_status != ENABLED else f"on ≤{month_kw} kW this month",
                "off"
                if s.dynamic_demand_status != ENABLED
                else f"on {s.dynamic_demand_percentage:g}%",
                s.updated_at,
            ]
        )
    return rows


def format_table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


async def read_strategies(site: SiteConfig) -> list[Strategy]:
    """Offline: the strategies in the store, without connecting to MQTT."""
    store = make_store(site.store.url)
    await store.open()
    try:
        rows = await store.list_strategies()
    finally:
        await store.close()
    good, _ = load_stored(rows)  # a quarantined row is logged, not shown as enforced
    return [good[k] for k in sorted(good)]


def _class_label(device_type: int) -> str:
    """``storage`` / ``PV`` / ``charging pile`` for a stored device_type."""
    try:
        return DeviceClass(device_type).label
    except ValueError:
        return str(device_type)
