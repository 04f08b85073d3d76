"""Start-up of ``gridguard platform run``: database, MQTT bus, command service, HTTP server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from dataclasses import dataclass, field

import uvicorn
import uvloop

from gridguard.clock import Clock, SystemClock
from gridguard.mqtt.session import NODELAY_OPTION
from gridguard.platform.alarm_service import AlarmService
from gridguard.platform.api.deps import Services
from gridguard.platform.api.main import create_app
from gridguard.platform.bus import Bus, Receipt
from gridguard.platform.commands import Commander
from gridguard.platform.database import Database
from gridguard.platform.ingest import Ingest, subscriptions
from gridguard.platform.security import LoginLimiter
from gridguard.platform.settings import Settings
from gridguard.platform.telemetry_store import TelemetryWriter, prune

log = logging.getLogger("gridguard.platform")


class StartError(RuntimeError):
    """The platform cannot start (port taken, database unreachable)."""


@dataclass
class Running:
    """Filled in as the platform starts; ``ready`` is set once HTTP and MQTT are both up."""

    ready: asyncio.Event = field(default_factory=asyncio.Event)
    url: str = ""
    services: Services | None = None


def _listen(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(*NODELAY_OPTION)  # inherited by accepted sockets: 44 ms -> 3.5 ms per request
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise StartError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock.listen(128)
    sock.setblocking(False)  # noqa: FBT003 - the socket API
    return sock


async def _serve(server: uvicorn.Server, sock: socket.socket, stop: asyncio.Event) -> None:
    serving = asyncio.create_task(server.serve(sockets=[sock]), name="platform-http")
    stopping = asyncio.create_task(stop.wait(), name="platform-http-stop")
    await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    await serving
    stopping.cancel()
    stop.set()


async def _sweep(services: Services, alarms: AlarmService, stop: asyncio.Event) -> None:
    settings = services.settings
    while not stop.is_set():
        retried, expired = await services.commander.sweep(grace_s=settings.sweep_period_s)
        if retried or expired:
            log.warning("orphaned commands: %d re-sent, %d timed out", retried, expired)
        await alarms.check_offline(offline_after_intervals=settings.offline_after_intervals)
        await prune(
            services.db,
            now=services.clock.now(),
            samples_days=settings.samples_retention_days,
            minutes_days=settings.minutes_retention_days,
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), settings.sweep_period_s)


async def _mark_ready(server: uvicorn.Server, bus: Bus, running: Running) -> None:
    await bus.connected.wait()
    while not server.started:  # noqa: ASYNC110 - uvicorn offers a flag, no event
        await asyncio.sleep(0.01)
    running.ready.set()


async def run_platform(
    settings: Settings,
    stop: asyncio.Event,
    *,
    running: Running | None = None,
    clock: Clock | None = None,
) -> None:
    """Serve until ``stop`` is set (port 0 picks a free port; ``running.url`` tells it)."""
    running = running or Running()
    clock = clock or SystemClock()
    db = Database(settings.db_url)
    await db.open()
    sock = _listen(settings.host, settings.port)
    try:
        ingest: Ingest | None = None

        async def handle(topic: str, payload: bytes, receipt: Receipt) -> None:
            if ingest is not None:
                await ingest.handle(topic, payload, receipt)

        bus = Bus(
            settings.mqtt_url,
            subscriptions(settings),
            handle,
            client_id=settings.client_id,
            mqtt_version=settings.mqtt_version,
            session_expiry_s=settings.session_expiry_s,
            takeover=settings.takeover,
        )
        commander = Commander(
            db=db,
            publish=bus.publish,
            clock=clock,
            timeout_s=settings.command_timeout_s,
            retries=settings.command_retries,
        )
        writer = TelemetryWriter(db, clock)
        alarms = AlarmService(db, clock)
        writer.after_flush.append(alarms.on_samples)
        commander.on_failure.append(alarms.on_command)
        ingest = Ingest(commander=commander, writer=writer, clock=clock)
        limiter = LoginLimiter(attempts=settings.login_attempts, window_s=settings.login_window_s)
        services = Services(settings, db, commander, clock, limiter)
        config = uvicorn.Config(
            create_app(services), log_config=None, lifespan="off", http="httptools"
        )
        server = uvicorn.Server(config)
        host, port = sock.getsockname()[:2]
        running.url, running.services = f"http://{host}:{port}", services
        log.info("platform on %s, database %s", running.url, db.display_url)
        async with asyncio.TaskGroup() as group:
            group.create_task(bus.run(stop), name="platform-mqtt")
            group.create_task(_serve(server, sock, stop), name="platform-http")
            group.create_task(_sweep(services, alarms, stop), name="platform-sweeper")
            group.create_task(commander.run(stop), name="platform-others-results")
            # until the bus has ended its session: what it received while stopping is stored
            group.create_task(writer.run(bus.drained), name="platform-telemetry")
            group.create_task(alarms.send_webhooks(stop), name="platform-webhooks")
            group.create_task(_mark_ready(server, bus, running), name="platform-ready")
    finally:
        sock.close()
        await db.close()


def serve(settings: Settings) -> None:
    """Blocking entry point; SIGINT/SIGTERM stop it cleanly.

    On uvloop, with uvicorn's httptools parser: the event loop and the HTTP parsing in C cut
    the platform's CPU per REST command round trip (``bench/platform.py`` section b)."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await run_platform(settings, stop)

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())
