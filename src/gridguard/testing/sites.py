"""Site configurations of any size, for benchmarks and tests of the cost that grows with a site.

Meters sit behind shared Modbus TCP endpoints, up to ``units_per_endpoint`` unit ids on one
port (a gateway in front of an RS-485 line, as on a real site: 12 to 125 meters behind one),
each with ``storage_per_meter`` PCS behind it on the same endpoint.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

MAX_UNIT_ID = 247
"""The highest Modbus unit id a device may have (ModbusLink.slave_id)."""


def many_meters_site(
    meters: int,
    *,
    ports: list[int] | None = None,
    units_per_endpoint: int = 100,
    storage_per_meter: int = 1,
    uid: str = "gg-bench-001",
    timeout_s: float = 0.2,
) -> dict[str, Any]:
    """A decoded site document (``parse_site_config`` it) with ``meters`` gateway meters.

    Endpoint ``k`` (port ``ports[k]``, or 0 for "any free port") serves meters
    ``k * units_per_endpoint + 1 ...`` and their storage; ids are unique across classes."""
    per_unit = 1 + storage_per_meter
    if units_per_endpoint * per_unit > MAX_UNIT_ID:
        raise ValueError(
            f"units_per_endpoint {units_per_endpoint} x {per_unit} devices exceeds unit id 247"
        )
    endpoints = -(-meters // units_per_endpoint)
    ports = ports if ports is not None else [0] * endpoints
    if len(ports) < endpoints:
        raise ValueError(f"{meters} meters need {endpoints} ports, got {len(ports)}")
    doc: dict[str, Any] = {
        "device": {"uid": uid, "site_name": "bench"},
        "meters": [],
        "storage": [],
    }
    for index in range(meters):
        endpoint, unit = divmod(index, units_per_endpoint)

        def link(offset: int, endpoint: int = endpoint, unit: int = unit) -> dict[str, Any]:
            return {
                "host": "127.0.0.1",
                "port": ports[endpoint],
                "slave_id": unit * per_unit + offset + 1,
                "timeout_s": timeout_s,
                "retries": 0,
            }

        meter_id = index + 1
        doc["meters"].append(
            {
                "id": meter_id,
                "uid": f"meter-{meter_id}",
                "name": f"meter {meter_id}",
                "type": "Acrel-ADW300",
                "per_phase": True,
                "modbus": link(0),
            }
        )
        for k in range(storage_per_meter):
            storage_id = meters + index * storage_per_meter + k + 1
            doc["storage"].append(
                {
                    "id": storage_id,
                    "uid": f"ess-{storage_id}",
                    "name": f"storage {storage_id}",
                    "meter_id": meter_id,
                    "rated_kw": 100,
                    "capacity_kwh": 200,
                    "modbus": link(1 + k),
                }
            )
    return doc


def start_simulator(
    config: Path, ports: list[int], *, timeout_s: float = 60.0, keep_output: bool = True
) -> subprocess.Popen[str]:
    """``gridguard sim run`` on ``config`` (noon), once every one of ``ports`` accepts; its
    stdout is piped (read it with ``stop_simulator``), or dropped: a long run must not fill the
    pipe and stall the simulator."""
    command = [sys.executable, "-m", "gridguard", "sim", "run", "--config", str(config)]
    stdout = subprocess.PIPE if keep_output else subprocess.DEVNULL
    proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [*command, "--start", "12:00"], stdout=stdout, text=True
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            for port in ports:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        except OSError:
            time.sleep(0.1)
            continue
        return proc
    proc.kill()
    raise SystemExit("simulator did not start listening")


def stop_simulator(proc: subprocess.Popen[str], timeout_s: float = 10.0) -> str:
    """Stop it as Ctrl-C does (it closes its servers), killed if it takes longer; its output."""
    proc.send_signal(signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out or ""
