"""Prometheus metrics of the edge agent (``gridguard edge run --metrics-port``).

One :class:`MetricsRecorder` per agent, on its own registry. The agent calls it for each batch
of commands it answered, the control link after each control cycle with the engine's
:class:`~gridguard.control.status.ControlStatus`; ``/metrics`` is served from a thread by
``prometheus_client``. Power in kW (+ import at a meter; storage + discharge), as everywhere.

    gridguard_commands_total{op, code}           commands answered
    gridguard_command_seconds{op}                decode -> commit -> reply queued (histogram)
    gridguard_control_cycle_seconds              one read -> decide -> write cycle (histogram)
    gridguard_grid_power_kw{meter}               + import / - export (NaN: meter silent)
    gridguard_demand_kw{meter}                   sliding-window demand
    gridguard_dynamic_demand_kw{meter}           month's highest demand
    gridguard_target_kw{meter}                   over-demand target (NaN: off)
    gridguard_floor_kw / gridguard_ceiling_kw{meter}  active bounds incl. buffer (NaN: none)
    gridguard_failsafe{meter}                    1 while the meter's fail-safe holds
    gridguard_backflow_seconds_total{meter}      time spent exporting
    gridguard_device_online{kind, id}            1 online, 0 offline
    gridguard_device_power_kw{kind, id}          present power
    gridguard_device_setpoint_kw{kind, id}       last setpoint written (NaN: none yet)
    gridguard_storage_soc_pct{id}                state of charge
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from gridguard.control.status import ControlStatus

COMMAND_BUCKETS_S = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0)
CYCLE_BUCKETS_S = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
MAX_BACKFLOW_STEP_S = 10.0
"""A gap between two cycles longer than this (the agent stalled) is not counted as export."""


class AnsweredCommand(Protocol):
    """What the recorder needs of a handled command (the service's ``Handled``)."""

    @property
    def op(self) -> str: ...

    @property
    def code(self) -> int: ...


def _value(kw: float | None) -> float:
    return math.nan if kw is None else kw


class MetricsRecorder:
    """The agent's metrics; thread-safe to scrape while the loop records."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.commands = Counter(
            "gridguard_commands", "Commands answered", ["op", "code"], registry=r
        )
        self.command_seconds = Histogram(
            "gridguard_command_seconds",
            "Time from taking a command to its reply being queued, s",
            ["op"],
            buckets=COMMAND_BUCKETS_S,
            registry=r,
        )
        self.cycle_seconds = Histogram(
            "gridguard_control_cycle_seconds",
            "Duration of one control cycle (read, decide, write), s",
            buckets=CYCLE_BUCKETS_S,
            registry=r,
        )
        meter, device = ["meter"], ["kind", "id"]
        self.grid_kw = Gauge("gridguard_grid_power_kw", "Grid power, + import", meter, registry=r)
        self.demand_kw = Gauge("gridguard_demand_kw", "Sliding-window demand", meter, registry=r)
        self.dynamic_kw = Gauge(
            "gridguard_dynamic_demand_kw", "Month's highest demand", meter, registry=r
        )
        self.target_kw = Gauge("gridguard_target_kw", "Over-demand target", meter, registry=r)
        self.floor_kw = Gauge("gridguard_floor_kw", "Anti-backflow bound", meter, registry=r)
        self.ceiling_kw = Gauge("gridguard_ceiling_kw", "Over-demand bound", meter, registry=r)
        self.failsafe = Gauge("gridguard_failsafe", "1 while in fail-safe", meter, registry=r)
        self.backflow_s = Counter(
            "gridguard_backflow_seconds", "Time spent exporting to the grid", meter, registry=r
        )
        self.online = Gauge("gridguard_device_online", "1 online, 0 offline", device, registry=r)
        self.power_kw = Gauge("gridguard_device_power_kw", "Present power", device, registry=r)
        self.setpoint_kw = Gauge(
            "gridguard_device_setpoint_kw", "Last setpoint written", device, registry=r
        )
        self.soc_pct = Gauge("gridguard_storage_soc_pct", "State of charge", ["id"], registry=r)
        self._last_at_s: float | None = None

    def answered(self, handled: Iterable[AnsweredCommand], seconds: float) -> None:
        """A batch of commands answered in ``seconds`` (each command is counted at that)."""
        for command in handled:
            self.commands.labels(command.op, str(command.code)).inc()
            self.command_seconds.labels(command.op).observe(seconds)

    def cycle(self, seconds: float, status: ControlStatus) -> None:
        """A control cycle took ``seconds`` and left ``status``."""
        self.cycle_seconds.observe(seconds)
        at_s = status.at.timestamp() if status.at is not None else None
        step_s = at_s - self._last_at_s if at_s is not None and self._last_at_s is not None else 0
        self._last_at_s = at_s
        for m in status.meters:
            label = str(m.meter_id)
            self.grid_kw.labels(label).set(_value(m.grid_power_kw))
            self.demand_kw.labels(label).set(m.demand_kw)
            self.dynamic_kw.labels(label).set(m.dynamic_demand_kw)
            self.target_kw.labels(label).set(_value(m.target_kw))
            self.floor_kw.labels(label).set(_value(m.floor_kw))
            self.ceiling_kw.labels(label).set(_value(m.ceiling_kw))
            self.failsafe.labels(label).set(1 if m.failsafe else 0)
            exporting = m.grid_power_kw is not None and m.grid_power_kw < 0
            if exporting and 0 < step_s <= MAX_BACKFLOW_STEP_S:
                self.backflow_s.labels(label).inc(step_s)
            else:
                self.backflow_s.labels(label).inc(0)  # the series exists from the first cycle
        for d in status.devices:
            labels = (d.kind, str(d.id))
            self.online.labels(*labels).set(1 if d.online else 0)
            self.power_kw.labels(*labels).set(d.power_kw)
            self.setpoint_kw.labels(*labels).set(_value(d.setpoint_kw))
            if d.soc_pct is not None:
                self.soc_pct.labels(str(d.id)).set(d.soc_pct)

    def serve(self, port: int, host: str = "127.0.0.1") -> WSGIServer:
        """Serve ``/metrics`` on host:port from a daemon thread; ``shutdown()`` the result."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return server
